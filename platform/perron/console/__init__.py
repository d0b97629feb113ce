"""The operator and intercommunale console (on its own host): who may use it, onboarding
communes (wizard, CSV, provisioning), what intercommunales share with their members, and the
communes' lifecycle. The web pages are in :mod:`perron.console.web`."""
