"""Rules on the order of roles in a `messages` list, shared by the HF, TRL and OpenAI chat validators.

Each validator picks the checks its loader needs; `roles` holds each message's role (None for a
message that is not an object with a string role: those are reported elsewhere and skipped here).
"""

from __future__ import annotations

from outputs.validators.base import Violation


def order_violations(i: int, at: str, roles: list[str | None], known: tuple[str, ...], checks: tuple[str, ...],
                     loader: str) -> list[Violation]:
    """Violations of the role-order `checks` in row `i`; `known` are the roles `loader` accepts.

    `checks` names rule codes among: unknown_role, system_not_first, first_turn_not_user,
    roles_not_alternating, last_turn_not_assistant (reported in that order).

    User and assistant must alternate; other known roles (system, tool) are skipped by that check."""
    out: list[Violation] = []
    unknown = [k for k, r in enumerate(roles) if r is not None and r not in known]
    if "unknown_role" in checks and unknown:
        out.append(Violation(row=i, rule="unknown_role",
                             message=f"{at}: message(s) {unknown} have role(s) {sorted({roles[k] for k in unknown})}; "
                                     f"{loader} accepts {list(known)}"))
    lead = 0
    while lead < len(roles) and roles[lead] == "system":
        lead += 1
    late = [k for k in range(lead, len(roles)) if roles[k] == "system"]
    if "system_not_first" in checks and late:
        out.append(Violation(row=i, rule="system_not_first",
                             message=f"{at}: system message(s) {late} come after the conversation started; put the "
                                     "system message first"))
    sides = [(k, r) for k, r in enumerate(roles) if r in ("user", "assistant")]
    if "first_turn_not_user" in checks and sides and sides[0][1] != "user":
        out.append(Violation(row=i, rule="first_turn_not_user",
                             message=f"{at}: the first user/assistant message ({sides[0][0]}) is from the assistant; "
                                     "start with the user"))
    same = [sides[n][0] for n in range(1, len(sides)) if sides[n][1] == sides[n - 1][1]]
    if "roles_not_alternating" in checks and same:
        out.append(Violation(row=i, rule="roles_not_alternating",
                             message=f"{at}: message(s) {same} come from the same side as the one before; user and "
                                     "assistant must alternate"))
    known_roles = [r for r in roles if r is not None]
    if "last_turn_not_assistant" in checks and known_roles and known_roles[-1] != "assistant":
        out.append(Violation(row=i, rule="last_turn_not_assistant",
                             message=f"{at} ends with a {known_roles[-1]!r} message; {loader} trains on the "
                                     "assistant's replies: end with an assistant message"))
    return out
