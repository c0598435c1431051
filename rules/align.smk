rule align:
    input:
        unpack(all_task_tables),
        base=base_models,
    output:
        models=directory("results/{study}/align/{size}/tokens-{tokens}"),
    params:
        code=code_hash("models", "train", "data", "provenance", "pipeline/finetune"),
        runtime=model_runtime(),
        phase=phase_settings(1),
    log:
        "results/{study}/logs/align/{size}/tokens-{tokens}.log",
    benchmark:
        "results/{study}/benchmarks/align/{size}/tokens-{tokens}.tsv"
    threads: 2
    resources:
        mem_mb=job_mem(6000),
        runtime=job_runtime(120),
        gpu=gpus(),
    conda:
        "../envs/springback.yaml"
    script:
        "../workflow/scripts/align.py"
