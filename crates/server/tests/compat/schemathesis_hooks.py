"""Rules of the vpnaas API that its OpenAPI document states in words, because JSON Schema
cannot: a request the schemas admit may still break one, and the server then refuses it
with the error the document names. Such a refusal is what the document promises, not a
disagreement, so it is not reported; any other refusal of a request the schemas admit
still is. Loaded by crates/server/tests/schemathesis.rs."""

import schemathesis


@schemathesis.hook
def filter_failure(context, failure, case, response):
    """Keeps every failure but a refusal, with the error the document names, of a
    request that breaks a rule the document states in words."""
    if failure.code != "ST202" or response.status_code != 400:
        return True
    error = neutron_error(response)
    return not any(rule(case, error) for rule in WORDED_RULES)


def unpaired_sort_dir(case, error):
    """`sort_dir`, when given, names one direction per `sort_key`."""
    query = case.query or {}
    dirs = as_list(query.get("sort_dir"))
    return (
        bool(dirs)
        and len(dirs) != len(as_list(query.get("sort_key")))
        and error.get("message") == "The number of sort_keys and sort_dirs must be same"
    )


def missing_endpoint_subnet(case, error):
    """A `subnet` endpoint group names existing subnets."""
    group = case.body.get("endpoint_group") if isinstance(case.body, dict) else None
    return (
        (case.method.upper(), case.path) == ("POST", "/v2.0/vpn/endpoint-groups")
        and isinstance(group, dict)
        and group.get("type") == "subnet"
        and error.get("type") == "NonExistingSubnetInEndpointGroup"
    )


WORDED_RULES = [unpaired_sort_dir, missing_endpoint_subnet]


def neutron_error(response):
    try:
        return response.json().get("NeutronError") or {}
    except (ValueError, AttributeError):
        return {}


def as_list(value):
    if value is None:
        return []
    return value if isinstance(value, list) else [value]
