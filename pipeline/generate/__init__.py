"""Self-instruct generation: prompts, reply parsing, quality filters and the generate stage."""
