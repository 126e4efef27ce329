"""Rejects: every input that did not become a sample, with a reason code. Nothing is dropped silently."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from schemas.sample import Lineage

#: Reason codes and what each means. Stats and rejects.jsonl use these names.
REASONS: dict[str, str] = {
    "image_missing": "the image file does not exist under the image root",
    "image_path_escapes_root": "the image path is absolute or leaves the image root",
    "image_unreadable": "the image file could not be decoded",
    "missing_key": "a required key is missing from the record",
    "bad_value": "a field has a value of the wrong type or range",
    "box_invalid": "a box has zero or negative size",
    "box_outside_image": "a box lies outside its image",
    "unknown_category": "an object's category id is not in the file's categories",
    "unknown_image": "an annotation refers to an image id the file does not list",
    "unknown_annotation": "a reference names an annotation id the instances file does not list",
    "empty_answer": "the answer is empty",
    "empty_question": "the question is empty",
    "empty_caption": "the caption is empty",
    "no_task": "no configured task could use this record",
    "first_turn_not_user": "the conversation does not start with a user turn",
    "roles_not_alternating": "user and assistant turns do not alternate",
    "empty_turn": "a turn has no text",
    "image_token_mismatch": "the number of <image> placeholders differs from the number of images",
    "box_marker_mismatch": "a <box:N> marker refers to a box the sample does not have",
    "turn_too_long": "a turn is longer than validate.max_chars_per_turn",
    "too_many_turns": "the conversation has more turns than validate.max_turns",
    "schema": "the sample does not match the Sample schema",
    "export_invalid": "a sample's row breaks the loading rules of an output format (checked before writing)",
    # generate (self-instruct through an LLM)
    "no_context": "the record has no image, or neither captions nor objects, for the LLM to write about",
    "llm_request_failed": "the LLM request failed after its retries (rate limit, server error, timeout, "
                          "dropped connection, bad request); the message says which",
    "llm_unparseable": "the LLM reply was not the JSON the prompt asks for, even after repair requests",
    "hallucinated_object": "a generated answer names an object category the record does not have",
    "wrong_count": "a generated answer to a counting question differs from the record's object count",
    "answer_repeats_question": "a generated answer repeats its question",
    "repeated_question": "a generated conversation asks the same question twice",
    "answer_too_short": "a generated answer is shorter than generate.filters allows",
    "answer_too_long": "a generated answer is longer than generate.filters.max_answer_words",
    "repetitive_answer": "a generated answer loops (repeats the same words over and over)",
    "copies_example": "a generated answer copies the prompt's few-shot example instead of describing the image",
    "wrong_language": "a generated question or answer is not in the requested language",
    # describe (a local vision-language model captions and boxes unlabelled images)
    "describe_unparseable": "the describe model's output is not in the caption or box format its model family "
                            "writes; the raw output is kept in the lineage",
    "describe_failed": "the describe model could not run on this image (unreadable image, backend error); "
                       "the message says which",
    # text-only sources (alpaca, sharegpt, dolly, openai_messages, hf_dataset)
    "unknown_role": "a conversation turn has a role that maps to none of system, user, assistant",
    "system_not_first": "a system message comes after the conversation began (only leading ones are kept)",
    "empty_conversation": "no user/assistant exchange is left in the conversation (after safe repairs)",
    # dedup and mix (pipeline/dedup.py, pipeline/mix.py)
    "duplicate_exact": "the sample has the same images and the same text (after normalisation) as an earlier "
                       "sample; `duplicate_of` names the one kept",
    "duplicate_near": "the sample has the same images as an earlier sample and nearly the same text (dedup.near); "
                      "`duplicate_of` names the one kept",
    "not_mixed": "a text-only sample the mix stage did not pick: mix.text_only_share (and the source weights and "
                 "caps) leave no room for it",
    # tune (pipeline/tune)
    "too_long_for_model": "the tokenized sample, visual tokens included, is longer than tune.model.max_length",
}


class Reject(BaseModel):
    """An input record or a sample that was rejected, with why and where it came from."""

    model_config = ConfigDict(extra="forbid")

    reason: str
    message: str
    stage: str
    source: str
    file: str | None = None
    record: str | None = None
    sample_id: str | None = None
    task: str | None = None
    template_id: str | None = None
    lineage: Lineage | None = None
    #: For duplicates (dedup stage): the id of the earlier sample that was kept.
    duplicate_of: str | None = None
