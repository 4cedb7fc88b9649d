"""Dataset readers and readers of user files (the leftmost layer: imports nothing else from semspace but errors)."""

from semspace.data.files import Documents, read_documents, read_lines, read_vectors
from semspace.data.samples import load_sample
from semspace.data.sts import STSPairs, read_senteval_cn, read_senteval_sts, read_sick, read_stsbenchmark
from semspace.data.tasks import (
    ALL_TASKS,
    CHINESE_TASKS,
    ENGLISH_TASKS,
    STSTask,
    default_data_root,
    load_sts_task,
)

__all__ = [
    "ALL_TASKS",
    "CHINESE_TASKS",
    "ENGLISH_TASKS",
    "Documents",
    "STSPairs",
    "STSTask",
    "default_data_root",
    "load_sample",
    "load_sts_task",
    "read_documents",
    "read_lines",
    "read_senteval_cn",
    "read_senteval_sts",
    "read_sick",
    "read_stsbenchmark",
    "read_vectors",
]
