"""Run the generate stage over the fixture records in a separate process (for the SIGKILL test).

Usage: python resume_worker.py BASE_URL CACHE_DIR OUT_FILE
Writes every output item as one JSON line to OUT_FILE, atomically, once the whole run is done.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1]))

from pipeline.generate.stage import GenerateStage  # noqa: E402
from pipeline.llm.config import GenerateSection  # noqa: E402
from schemas.record import AnnotationRecord  # noqa: E402

#: Copies of the fixture records with distinct ids: 4 x 4 = 16 records, 12 usable -> 36 requests.
COPIES = 4


def main(base_url: str, cache_dir: str, out_file: str) -> None:
    base = json.loads((HERE.parent / "assets" / "generate" / "records.json").read_text(encoding="utf-8"))
    records = [AnnotationRecord.model_validate({**r, "id": f"{r['id']}-{k}"}) for k in range(COPIES) for r in base]
    section = GenerateSection(endpoint=base_url, model="fake-model", cache_dir=cache_dir, concurrency=4,
                              timeout_s=60, max_retries=8, backoff_base_s=0.01, backoff_max_s=0.05)
    stage = GenerateStage(section, seed=7)
    out = []
    for start in range(0, len(records), 8):  # two batches, as a runner would send them
        out.extend(stage.process_batch(records[start:start + 8]))
    stage.close()
    tmp = out_file + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        for item in out:
            f.write(json.dumps({"type": type(item).__name__, **item.model_dump(mode="json")}, sort_keys=True) + "\n")
    os.replace(tmp, out_file)


if __name__ == "__main__":
    main(*sys.argv[1:4])
