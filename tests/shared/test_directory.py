"""shared.directory: account filters matched back to accounts, and paged whole-directory
searches against a real slapd."""

from __future__ import annotations

import uuid

from shared.config import DirectorySettings
from shared.directory import Access, AccountEntries, Connections
from shared.tenancy import AccountPath
from tests.slapd import SUFFIX, Slapd

PATH = AccountPath(reseller_id="r1", reseller="MSP", customer_id="c1", customer="Acme (EU)",
                   account_id="a1", account="file*server")


def test_one_entry_filter_escapes_and_the_all_entries_filter_matches_any():
    entries = AccountEntries("ou=a", "(&(objectClass=x)(uid={account})(o=pre-{customer}))")
    assert entries.query(PATH) == r"(&(objectClass=x)(uid=file\2aserver)(o=pre-Acme \28EU\29))"
    assert entries.query_all() == "(&(objectClass=x)(uid=*)(o=pre-*))"
    assert entries.key_attributes == ["o", "uid"]


def test_an_entry_is_matched_back_to_its_account_through_the_filter():
    entries = AccountEntries("ou=a", "(&(objectClass=x)(uid={account})(o=pre-{customer}))")
    entry = {"UID": ["File*Server"], "o": ["other", "pre-Acme (EU)"]}
    assert entries.key_of_entry(entry) == entries.key_of(PATH)
    assert entries.key_of_entry({"uid": ["file*server"], "o": ["Acme (EU)"]}) is None
    assert entries.key_of_entry({"o": ["pre-Acme (EU)"]}) is None
    by_id = AccountEntries("ou=a", "(description=backstop:{account_id})")
    assert by_id.key_of_entry({"description": ["backstop:a1"]}) == by_id.key_of(PATH)


def test_search_all_reads_every_entry_page_by_page(slapd: Slapd):
    tag = uuid.uuid4().hex[:8]
    for n in range(7):
        slapd.add_account(f"paged-{tag}-{n}", description=f"page-{tag}")
    pool = Connections(Access.reader(DirectorySettings(ldap_url=slapd.url)))
    base = f"ou=accounts,ou=backup,ou=services,{SUFFIX}"
    before = slapd.searches(base)
    found = pool.search_all(base, f"(description=page-{tag})", ["uid"], page_size=3)
    assert len(found) == 7 and len({e.dn for e in found}) == 7
    assert slapd.searches(base) - before == 3  # one operation per page of three
    pool.close()
