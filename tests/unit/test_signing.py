"""The SPEC 11 test vectors for `paygate-hmac-v1`."""

from protocol import signing

SECRET = "demo-secret-0123456789abcdef"
TS = "1764028800"
NONCE = "n0nce-ABCDEFGH1234"
BODY = (
    b'{"merchant_order_id":"o-1","amount":10000,"currency":"CNY","payee":{"account_no":'
    b'"6222020200112233445","account_name":"Zhang San","bank_code":"102100099996",'
    b'"account_type":"personal"}}'
)


def test_body_digest_matches_spec_vector() -> None:
    assert (
        signing.body_digest(BODY)
        == "5c978aa3cde6356f22e7960a876bd17f5b60d06cb40de31a7a5d5b9c961c94cf"
    )


def test_post_signature_matches_spec_vector() -> None:
    sig = signing.sign(SECRET, TS, NONCE, "POST", "/v1/payouts", BODY)
    assert sig == "v1=50fe950279b177781ec0b228b0ac0d0fb146709b5606bb62e52cb434c6c9561f"


def test_get_with_query_and_empty_body_matches_spec_vector() -> None:
    sig = signing.sign(SECRET, TS, NONCE, "GET", "/v1/payouts?status=succeeded&limit=2", b"")
    assert sig == "v1=246237fbe00042ce608e63c9f593921ce0e223452fe37e90dda877669c13f878"


def test_method_is_upper_cased_in_canonical_form() -> None:
    assert signing.sign(SECRET, TS, NONCE, "post", "/v1/payouts", BODY) == signing.sign(
        SECRET, TS, NONCE, "POST", "/v1/payouts", BODY
    )


def test_any_changed_part_changes_the_signature() -> None:
    base = signing.sign(SECRET, TS, NONCE, "POST", "/v1/payouts", BODY)
    assert signing.sign(SECRET, "1764028801", NONCE, "POST", "/v1/payouts", BODY) != base
    assert signing.sign(SECRET, TS, NONCE + "x", "POST", "/v1/payouts", BODY) != base
    assert signing.sign(SECRET, TS, NONCE, "PUT", "/v1/payouts", BODY) != base
    assert signing.sign(SECRET, TS, NONCE, "POST", "/v1/payouts?x=1", BODY) != base
    assert signing.sign(SECRET, TS, NONCE, "POST", "/v1/payouts", BODY + b" ") != base
    assert signing.sign(SECRET + "x", TS, NONCE, "POST", "/v1/payouts", BODY) != base


def test_sign_request_builds_all_four_headers() -> None:
    headers = signing.sign_request("m_1", SECRET, "GET", "/v1/balance", b"")
    assert set(headers) == {
        signing.H_KEY,
        signing.H_TIMESTAMP,
        signing.H_NONCE,
        signing.H_SIGNATURE,
    }
    assert signing.NONCE_RE.match(headers[signing.H_NONCE])
    assert signing.SIGNATURE_RE.match(headers[signing.H_SIGNATURE])
