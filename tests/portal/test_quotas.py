"""The quotas page's account query: the text filter matches account or customer names in any
case, literally (``%`` and ``_`` are no wildcards), within the viewer's scope."""

from __future__ import annotations

from services.portal.queries import quotas
from shared.db import Database
from shared.scopes import Scope
from tests.portal.site import tenants


def test_the_text_filter_matches_names_in_any_case_and_literally(db: Database) -> None:
    t = tenants(db)
    with db.session() as session:
        def names(text: str, scope: Scope = Scope.everything()) -> list[str]:
            return sorted(row.account for row in quotas.accounts(session, scope, text=text).items)

        assert names("SERVER") == ["fileserver", "mailserver"]
        assert names("glob") == ["mailserver"]  # the customer's name
        assert names("_") == [] and names("%") == [] and names("file%") == []
        assert names("SERVER", Scope.of_customer(t.acme.reseller.id, t.acme.customer.id)) == [
            "fileserver"]
