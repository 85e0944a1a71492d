"""The ACME server's SQL state on SQLite and PostgreSQL: one account per key, an order with its authorizations and
challenges, a validation's outcome moving the order to ready (or invalid), a certificate making it valid,
revocation once, EAB keys bound once, key rollover refused onto a key in use."""

from __future__ import annotations

import datetime as dt

from tlsward.model.acme import (
    AcmeAccount,
    AcmeAuthorization,
    AcmeCertificate,
    AcmeChallenge,
    AcmeEabKey,
    AcmeIdentifier,
    AcmeOrder,
)
from tlsward.storage import Store
from tlsward.storage.acme import AcmeStore

NOW = dt.datetime(2026, 11, 28, 12, 0, tzinfo=dt.UTC)


def _order(state: AcmeStore, account: str, order_id: str, *names: str) -> AcmeOrder:
    authzs = [AcmeAuthorization(id=f"{order_id}a{n}", account_id=account, order_id=order_id,
                                identifier=AcmeIdentifier("dns", name), expires=NOW + dt.timedelta(days=7),
                                challenges=(AcmeChallenge(id=f"{order_id}a{n}-0", authz_id=f"{order_id}a{n}",
                                                          type="http-01", token=f"t{n}"),
                                            AcmeChallenge(id=f"{order_id}a{n}-1", authz_id=f"{order_id}a{n}",
                                                          type="dns-01", token=f"u{n}")))
              for n, name in enumerate(names)]
    order = AcmeOrder(id=order_id, account_id=account, identifiers=tuple(a.identifier for a in authzs),
                      authz_ids=tuple(a.id for a in authzs), expires=NOW + dt.timedelta(days=7), created_at=NOW)
    state.create_order(order, authzs)
    return order


def test_accounts_and_keys(store: Store) -> None:
    state = AcmeStore(store)
    first, created = state.create_account(AcmeAccount(id="a1", jwk="{}", thumbprint="t1", created_at=NOW))
    assert created and first.id == "a1" and first.created_at == NOW
    again, created = state.create_account(AcmeAccount(id="a2", jwk="{}", thumbprint="t1"))
    assert not created and again.id == "a1"
    state.create_account(AcmeAccount(id="b1", jwk="{}", thumbprint="t2"))
    assert state.change_account_key("a1", '{"k": 1}', "t2") is None
    changed = state.change_account_key("a1", '{"k": 1}', "t3")
    assert changed is not None and state.account_by_thumbprint("t3") == changed
    updated = state.update_account("a1", status="deactivated", contact=("mailto:x@example.test",))
    assert updated is not None and updated.status == "deactivated" and updated.contact == ("mailto:x@example.test",)


def test_order_lifecycle(store: Store) -> None:
    state = AcmeStore(store)
    state.create_account(AcmeAccount(id="acc", jwk="{}", thumbprint="tp"))
    order = _order(state, "acc", "o1", "a.example.test", "b.example.test")
    authz = state.authorization("o1a0")
    assert authz is not None and [c.type for c in authz.challenges] == ["http-01", "dns-01"]
    started = state.start_challenge("o1a0-0")
    assert started is not None and started[1] and started[0].challenges[0].status == "processing"
    assert state.start_challenge("o1a0-0") is not None and not state.start_challenge("o1a0-0")[1]  # type: ignore[index]
    state.finish_challenge("o1a0-0", valid=True, error=None, now=NOW)
    assert state.order("o1").status == "pending"  # type: ignore[union-attr]
    state.start_challenge("o1a1-1")
    state.finish_challenge("o1a1-1", valid=True, error=None, now=NOW)
    assert state.order("o1").status == "ready"  # type: ignore[union-attr]
    assert state.update_order("o1", status="processing", expect="ready")
    assert not state.update_order("o1", status="processing", expect="ready")
    certificate = AcmeCertificate(id="c1", account_id="acc", order_id=order.id, serial="abc", aki="01",
                                  fullchain_pem="PEM", not_before=NOW, not_after=NOW + dt.timedelta(days=90),
                                  identifiers=order.identifiers)
    state.store_certificate(certificate)
    done = state.order("o1")
    assert done is not None and done.status == "valid" and done.certificate_id == "c1"
    assert state.certificate_by_serial("abc") == certificate
    assert state.revoke_certificate("c1", reason=4, now=NOW)
    assert not state.revoke_certificate("c1", reason=4, now=NOW)
    assert state.account_orders("acc") == ["o1"]


def test_failed_validation_invalidates(store: Store) -> None:
    state = AcmeStore(store)
    state.create_account(AcmeAccount(id="acc", jwk="{}", thumbprint="tp"))
    _order(state, "acc", "o2", "c.example.test")
    state.start_challenge("o2a0-0")
    state.finish_challenge("o2a0-0", valid=False, error='{"type": "x"}', now=NOW)
    order, authz = state.order("o2"), state.authorization("o2a0")
    assert order is not None and order.status == "invalid" and order.error == '{"type": "x"}'
    assert authz is not None and authz.status == "invalid" and authz.challenges[0].error == '{"type": "x"}'
    deactivated = state.deactivate_authorization("o2a0")
    assert deactivated is not None and deactivated.status == "invalid"


def test_eab_binds_once(store: Store) -> None:
    state = AcmeStore(store)
    state.add_eab_key(AcmeEabKey(kid="k1", hmac_key=b"\x00" * 32, label="team", created_at=NOW))
    bound = state.create_account_with_eab(AcmeAccount(id="e1", jwk="{}", thumbprint="te", eab_kid="k1"), "k1")
    assert bound is not None and bound[1]
    assert state.create_account_with_eab(AcmeAccount(id="e2", jwk="{}", thumbprint="tf", eab_kid="k1"), "k1") is None
    assert state.eab_key("k1") == AcmeEabKey(kid="k1", hmac_key=b"\x00" * 32, label="team", created_at=NOW,
                                            account_id="e1")
    assert [k.kid for k in state.eab_keys()] == ["k1"]
