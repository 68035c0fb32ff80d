"""Which chat template renders prompts for a remote model, and where it came from.

Raw completions (the way a budget, Stop thinking and the loop breaker continue a reply) need the
model's own chat template. In order: the one the server publishes (llama-server's /props); the
one in a local copy of the model's GGUF header (a path the user gave, or the server's model name
when it is a GGUF file on this machine, as with a llama-cpp-python server on loopback); the
generic ChatML one when the user picked it. Else None: the engine falls back to chat completions
and says which controls that costs. Templates are rendered in app.core.llm.chat_template's
sandbox, since a server or a file can hand us any text.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from app.core.errors import LeanCoderError
from app.core.gguf.header import read_header
from app.core.llm.chat_template import ChatTemplate
from app.core.llm.template_limits import RenderLimits
from app.core.remote.capabilities import ServerCapabilities


@dataclass(frozen=True, slots=True)
class TemplateChoice:
    template: ChatTemplate | None
    source: str  # for the notes: "published by the server", "from model.gguf", ...
    n_ctx_train: int | None = None  # from a GGUF header, when one was read


def choose_template(
    caps: ServerCapabilities,
    host: str,
    n_ctx: int,
    *,
    picked: str = "model",
    template_gguf: Path | None = None,
) -> TemplateChoice:
    limits = RenderLimits.for_context(n_ctx)
    if picked == "default":
        return TemplateChoice(ChatTemplate(None, limits=limits), "the generic ChatML one (chosen)")
    if caps.chat_template:
        template = ChatTemplate(
            caps.chat_template,
            bos_token=caps.bos_token,
            eos_token=caps.eos_token,
            label=f"chat template published by {host}",
            limits=limits,
        )
        return TemplateChoice(template, f"published by {host}")
    candidates = [template_gguf] if template_gguf is not None else []
    named = Path(caps.model)
    if named.suffix.lower() == ".gguf" and named.is_absolute():
        candidates.append(named)
    for path in candidates:
        if path is None or not path.expanduser().is_file():
            if path is template_gguf and path is not None:
                raise LeanCoderError(f"The GGUF file {path} for the remote model's chat template "
                                     "does not exist.")  # fmt: skip
            continue
        header = read_header(path.expanduser())  # ModelFileError for a file that is not GGUF
        if header.chat_template:
            template = ChatTemplate(
                header.chat_template,
                label=f"chat template of {path.name}",
                limits=limits,
            )
            return TemplateChoice(template, f"from {path.name}", header.context_length)
    return TemplateChoice(None, "none")
