"""Golden cases (``golden_sandbox``: payload sent verbatim; ``golden_agent``: put to the agent)."""

crmbench_kind = "golden"
crmbench_golden = "*.json"


def test_golden(crm_result):
    crm_result.check()
