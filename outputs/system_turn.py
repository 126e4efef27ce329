"""Separating a sample's system text from its user/assistant turns, for formats that keep them apart.

Neither LLaVA (no system role at all) nor LLaMA-Factory (a separate `system` column) puts a system
message inside the conversation, so both writers start from `split_system`.
"""

from __future__ import annotations

from outputs.errors import WriterError
from schemas.sample import Sample, Turn


def split_system(sample: Sample, writer: str) -> tuple[str | None, list[Turn]]:
    """Return (system text or None, the remaining turns).

    Leading system turns are joined with a blank line. A system turn after a user or assistant turn
    cannot be placed in either format, so it raises WriterError (the validate stage rejects such
    samples as `roles_not_alternating` before they reach a writer).
    """
    system: list[str] = []
    rest: list[Turn] = []
    for i, turn in enumerate(sample.turns):
        if turn.role == "system":
            if rest:
                raise WriterError(
                    f"{writer}: sample {sample.id!r} has a system turn at position {i}, after the conversation "
                    "started; a system turn may only come first. Move it to the start or drop it"
                )
            system.append(turn.text)
        else:
            rest.append(turn)
    return ("\n\n".join(system) if system else None), rest
