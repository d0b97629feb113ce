"""People: their accounts in a commune, their sessions, what they may do.

Keycloak authenticates (:mod:`perron.identity.oidc`, :mod:`perron.identity.login`); Perron
authorizes (roles and residency live in its database). An
:class:`Account` is a person's standing in one commune: roles, verified residency, address,
preferences. A person dealing with two communes has two accounts, one per tenant, so no
commune ever reads another's view of a citizen.
"""
