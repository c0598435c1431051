rule pretrain:
    input:
        corpus=world_table("pretrain"),
        tokenizer=rules.tokenizer.output[0],
    output:
        models=directory("results/{study}/base/{world}/{size}/pseed-{pseed}"),
    params:
        code=code_hash("pretrain"),
        arch=arch_of,
        train=pretrain_settings(),
        tokens=budget_of,
        ladder=ladder_of,
        runtime=model_runtime(),
    log:
        "results/{study}/logs/base/{world}/{size}/pseed-{pseed}.log",
    benchmark:
        "results/{study}/benchmarks/base/{world}/{size}/pseed-{pseed}.tsv"
    threads: job_threads()
    priority: longest_first(30)  # before every other model job: they all wait for it
    resources:
        mem_mb=scaled_mem(6000),
        runtime=120,
        gpu=gpus(),
    conda:
        "../envs/springback.yaml"
    script:
        "../workflow/scripts/pretrain.py"
