rule pretrain:
    input:
        unpack(job_world_files),
        tokenizer=rules.tokenizer.output[0],
    output:
        models=directory(base_model()),
    params:
        code=code_hash("pretrain"),
        arch=lookup(dpath="models/{size}", within=config),
        train=PRETRAIN,
        tokens=lookup(dpath="pretrain/tokens/{size}", within=config),
        checkpoints=ladder_checkpoints,
        runtime=RUN["model"],
    log:
        "results/{study}/logs/base/{world}/{size}/pseed-{pseed}.log",
    benchmark:
        "results/{study}/benchmarks/base/{world}/{size}/pseed-{pseed}.tsv"
    threads: RUN["threads"]
    priority: longest_first(30)  # before every other model job: they all wait for it
    resources:
        mem_mb=scaled_mem(6000),
        runtime=120,
        gpu=RUN["gpu"],
    conda:
        "../envs/springback.yaml"
    script:
        "../workflow/scripts/pretrain.py"
