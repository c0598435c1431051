rule algorithms:
    input:
        unpack(algorithm_task_tables),
        base=base_checkpoint,
        pretrain_heldout=world_table("pretrain_heldout"),
    output:
        metrics="results/{study}/algorithms/{world}/{size}/pseed-{pseed}/tokens-{tokens}/metrics.csv",
        prompts="results/{study}/algorithms/{world}/{size}/pseed-{pseed}/tokens-{tokens}/prompts.parquet",
    params:
        code=code_hash("algorithms"),
        algorithms=config["algorithms"],
        grid={k: REBOUND[k] for k in ("n_pos", "n_neg", "batch_size")},
        evaluate=config["evaluate"],
        runtime=model_runtime(),
    log:
        "results/{study}/logs/algorithms/{world}/{size}/pseed-{pseed}/tokens-{tokens}.log",
    benchmark:
        "results/{study}/benchmarks/algorithms/{world}/{size}/pseed-{pseed}/tokens-{tokens}.tsv"
    threads: job_threads()
    priority: longest_first(20)  # its jobs are the longest after pretraining
    resources:
        mem_mb=job_mem(4000),
        runtime=job_runtime(120),
        gpu=gpus(),
    conda:
        "../envs/springback.yaml"
    script:
        "../workflow/scripts/algorithms.py"
