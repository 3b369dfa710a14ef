"""Schemathesis hooks for wuye (deploy/fuzz.sh).

Checks: no HTTP 5xx, and no GraphQL error coded INTERNAL — every bad input must come back
as a typed error (VALIDATION naming the field, NOT_FOUND, FORBIDDEN, ...), never as the
catch-all that a database refusal would produce. Ordinary GraphQL errors are answers, not
failures. The custom scalars get generators of their own: well-formed values most of the
time, any text otherwise.
"""
import schemathesis
from hypothesis import strategies as st
from schemathesis.graphql import nodes

text = st.text(max_size=40)
schemathesis.graphql.scalar(
    "DateTime",
    st.one_of(st.datetimes().map(lambda d: d.isoformat() + "Z"), text).map(nodes.String),
)
schemathesis.graphql.scalar("NaiveDate", st.one_of(st.dates().map(str), text).map(nodes.String))
schemathesis.graphql.scalar(
    "Decimal",
    st.one_of(
        st.decimals(allow_nan=False, allow_infinity=False, places=2).map(str),
        text,
    ).map(nodes.String),
)
schemathesis.graphql.scalar("JSON", st.one_of(st.integers().map(nodes.Int), text.map(nodes.String)))
schemathesis.graphql.scalar("Upload", st.just(nodes.Null))


@schemathesis.check
def no_server_error(ctx, response, case):
    if response.status_code >= 500:
        raise AssertionError(f"HTTP {response.status_code}")
    return None


@schemathesis.check
def no_internal_error(ctx, response, case):
    try:
        body = response.json()
    except Exception:
        return None
    if not isinstance(body, dict):
        return None
    for err in body.get("errors") or []:
        code = ((err or {}).get("extensions") or {}).get("code")
        if code == "INTERNAL":
            raise AssertionError(f"INTERNAL error: {err.get('message')!r}")
    return None
