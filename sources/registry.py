"""The plain registry of sources: kind -> Source class. A new source is one file plus one line here."""

from __future__ import annotations

from sources.base import Source
from sources.coco_captions import CocoCaptionsSource
from sources.coco_instances import CocoInstancesSource
from sources.gqa import GQASource
from sources.ocrvqa import OCRVQASource
from sources.textvqa import TextVQASource
from sources.vqav2 import OKVQASource, VQAv2Source
from sources.generic import GenericSource
from sources.image_folder import ImageFolderSource
from sources.image_glob import ImageGlobSource
from sources.karpathy import KarpathySource
from sources.refcoco import RefCOCOgSource, RefCOCOPlusSource, RefCOCOSource
from sources.scienceqa import ScienceQASource
from sources.alpaca import AlpacaSource
from sources.dolly import DollySource
from sources.hf_dataset import HFDatasetSource
from sources.openai_messages import OpenAIMessagesSource
from sources.sharegpt import ShareGPTSource

REGISTRY: dict[str, type[Source]] = {
    "coco_captions": CocoCaptionsSource,
    "coco_instances": CocoInstancesSource,
    "vqav2": VQAv2Source,
    "okvqa": OKVQASource,
    "gqa": GQASource,
    "textvqa": TextVQASource,
    "ocrvqa": OCRVQASource,
    "refcoco": RefCOCOSource,
    "refcoco_plus": RefCOCOPlusSource,
    "refcocog": RefCOCOgSource,
    "scienceqa": ScienceQASource,
    "karpathy": KarpathySource,
    "flickr30k": KarpathySource,
    "image_folder": ImageFolderSource,
    "images": ImageGlobSource,
    "generic": GenericSource,
    "alpaca": AlpacaSource,
    "sharegpt": ShareGPTSource,
    "dolly": DollySource,
    "openai_messages": OpenAIMessagesSource,
    "hf_dataset": HFDatasetSource,
}


def get_source(kind: str) -> type[Source]:
    try:
        return REGISTRY[kind]
    except KeyError:
        raise KeyError(f"unknown source kind {kind!r}; choose one of: {', '.join(sorted(REGISTRY))}") from None
