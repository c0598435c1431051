rule resistance:
    input:
        train=world_tables()["resistance_train"],
        prompts=world_tables()["resistance_prompts"],
        bases=resistance_inputs,
    output:
        "results/{study}/resistance/{world}/{size}/tokens-{tokens}.csv",
    params:
        code=code_hash("resistance"),
        resistance=config["resistance"],
    log:
        "results/{study}/logs/resistance/{world}/{size}/tokens-{tokens}.log",
    benchmark:
        "results/{study}/benchmarks/resistance/{world}/{size}/tokens-{tokens}.tsv"
    threads: job_threads()
    resources:
        mem_mb=scaled_mem(4000),
        runtime=60,
    conda:
        "../envs/springback.yaml"
    script:
        "../workflow/scripts/resistance.py"
