rule algorithms:
    input:
        unpack(job_world_files),
        **task_tables(config["algorithms"]["tasks"]),
        base=base_model(),
    output:
        metrics=f"results/{{study}}/{ALGORITHMS_JOB}/metrics.csv",
        prompts=f"results/{{study}}/{ALGORITHMS_JOB}/prompts.parquet",
    params:
        code=code_hash("algorithms"),
        checkpoint=checkpoint(),
        algorithms=config["algorithms"],
        n_pos=REBOUND["n_pos"],
        n_neg=REBOUND["n_neg"],
        batch_size=REBOUND["batch_size"],
        evaluate=config["evaluate"],
        runtime=RUN["model"],
    log:
        f"results/{{study}}/logs/{ALGORITHMS_JOB}.log",
    benchmark:
        f"results/{{study}}/benchmarks/{ALGORITHMS_JOB}.tsv"
    threads: RUN["threads"]
    priority: longest_first(20)  # its jobs are the longest after pretraining
    resources:
        mem_mb=scaled_mem(RUN["mem_mb"]),
        runtime=RUN["runtime"],
        gpu=RUN["gpu"],
    conda:
        "../envs/springback.yaml"
    script:
        "../workflow/scripts/algorithms.py"
