"""The console's pages (Litestar route handlers), gathered in :data:`ROUTES`."""

from perron.console.web import archives, billing, bulk, login, mutualisation, onboarding, pages

ROUTES = [
    *login.ROUTES,
    *pages.ROUTES,
    *onboarding.ROUTES,
    *bulk.ROUTES,
    *mutualisation.ROUTES,
    *archives.ROUTES,
    *billing.ROUTES,
]

__all__ = ["ROUTES"]
