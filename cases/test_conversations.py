"""Every conversation of the dataset is one test item (parametrized by the plugin).

``--crm-dataset`` replaces the shipped file; ``-k``/``-m`` pick cases (markers: complexity,
workflow, tool names, ``refusal``).
"""

crmbench_kind = "conversations"
crmbench_dataset = "conversations.jsonl"


def test_conversation(crm_result):
    crm_result.check()
