rule resistance:
    input:
        train=world_tables()["resistance_train"],
        prompts=world_tables()["resistance_prompts"],
        bases=expand(base_model(), pseed=config["pretrain"]["seeds"], allow_missing=True),
    output:
        "results/{study}/resistance/{world}/{size}/tokens-{tokens}.csv",
    params:
        code=code_hash("resistance"),
        checkpoints=expand(checkpoint(), pseed=config["pretrain"]["seeds"], allow_missing=True),
        resistance=config["resistance"],
    log:
        "results/{study}/logs/resistance/{world}/{size}/tokens-{tokens}.log",
    benchmark:
        "results/{study}/benchmarks/resistance/{world}/{size}/tokens-{tokens}.tsv"
    threads: RUN["threads"]
    resources:
        mem_mb=scaled_mem(4000),
        runtime=60,
    conda:
        "../envs/springback.yaml"
    script:
        "../workflow/scripts/resistance.py"
