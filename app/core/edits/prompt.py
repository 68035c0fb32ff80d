"""The instructions that ask a model for edits LeanCoder can apply, and which format to ask for.

Small models stay well-formed when they rewrite a whole (small) file, and drift when they must
quote lines exactly for SEARCH/REPLACE; big files make whole-file replies slow and likely to be
cut off. `choose_edit_format` weighs the two (design notes, section 5).
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import Enum

# Below this many parameters a model is "small" (Qwen2.5-Coder 0.5B-14B keep whole-file replies
# well formed; SEARCH/REPLACE well-formedness drops).
SMALL_MODEL_PARAMS = 15_000_000_000
# Whole-file replies for files up to this size (bytes): about 2,000 tokens of code to repeat.
WHOLE_FILE_MAX_BYTES = 8 * 1024
# For any model, a file this small is cheaper and safer to rewrite whole.
TINY_FILE_BYTES = 1536


class EditFormat(Enum):
    SEARCH_REPLACE = "search/replace"
    WHOLE_FILE = "whole file"


def choose_edit_format(model_params: int | None, file_sizes: Iterable[int]) -> EditFormat:
    """SEARCH/REPLACE, or whole files for small files (and small models).

    `model_params`: the model's parameter count (None if unknown); `file_sizes`: the byte sizes of
    the files the edit is likely to touch (none: new files only).
    """
    sizes = list(file_sizes)
    largest = max(sizes, default=0)
    if largest <= TINY_FILE_BYTES:
        return EditFormat.WHOLE_FILE
    small_model = model_params is not None and model_params < SMALL_MODEL_PARAMS
    if small_model and largest <= WHOLE_FILE_MAX_BYTES and sum(sizes) <= 2 * WHOLE_FILE_MAX_BYTES:
        return EditFormat.WHOLE_FILE
    return EditFormat.SEARCH_REPLACE


_COMMON_RULES = """\
- Put the file's path, relative to the project folder, alone on the line before each edit. Never \
use absolute paths or "..".
- Never write placeholders such as "... existing code ..." or "rest of the file unchanged": every \
line you write replaces real lines.
- To delete a file, write a line: DELETE FILE path/to/file
- Explain briefly before the edits if you need to; text outside the edits is not applied."""

SEARCH_REPLACE_PROMPT = f"""\
You are a careful coding assistant. When the user asks for a change to their files, reply with \
SEARCH/REPLACE blocks:

path/to/file.py
```python
<<<<<<< SEARCH
the exact lines currently in the file
=======
the lines that replace them
>>>>>>> REPLACE
```

Rules:
- SEARCH copies the file's current lines exactly, in order, with their indentation and comments; \
include just enough lines to match one place only.
- Use one block per change; several blocks may edit the same file, in file order.
- To create a new file, leave SEARCH empty and put the whole file in REPLACE.
{_COMMON_RULES}

Example: to make greet() say "Hi":

app/greet.py
```python
<<<<<<< SEARCH
def greet(name):
    return "Hello " + name
=======
def greet(name):
    return "Hi " + name
>>>>>>> REPLACE
```"""

WHOLE_FILE_PROMPT = f"""\
You are a careful coding assistant. When the user asks for a change to their files, reply with \
the complete new content of every file you change or create: the file's path alone on a line, \
then the whole file in a fenced code block.

Rules:
- Write the entire file, every line, even the lines that do not change.
- Use a longer fence (````) when the file itself contains ``` lines.
{_COMMON_RULES}

Example: to make greet() say "Hi":

app/greet.py
```python
def greet(name):
    return "Hi " + name
```"""


def edit_system_prompt(edit_format: EditFormat) -> str:
    if edit_format is EditFormat.WHOLE_FILE:
        return WHOLE_FILE_PROMPT
    return SEARCH_REPLACE_PROMPT
