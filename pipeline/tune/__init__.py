"""The fine-tuning stage: LoRA, selective tuning and IAA on what the build wrote, with a forgetting report.

`run.run_tune(section, data_path, image_root, out_dir)` is the entry point; `config.TuneSection` is the
recipe's `tune:` section.
"""
