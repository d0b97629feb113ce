"""Testing a module against a real Perron: throwaway communes, clients bound to a commune's
host, logged-in people, modules switched on, queued jobs run.

The pytest plugin (:mod:`perron.testing.plugin`) is registered when Perron is installed;
a module's tests just ask for the ``perron`` fixture::

    async def test_alpha_news_stay_in_alpha(perron, two_tenants):
        alpha, bravo = two_tenants
        await perron.enable(alpha, "news")
        editor = await perron.staff(alpha, roles=["news.editor"])
        ...

The database is SQLite in a temporary folder unless ``PERRON_TEST_DATABASE_URL`` (and
``PERRON_TEST_DATABASE_OWNER_URL``) name a PostgreSQL database, which is then emptied.
"""

from perron.testing.harness import Harness, Person, Tenant

__all__ = ["Harness", "Person", "Tenant"]
