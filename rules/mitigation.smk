rule mitigation:
    input:
        unpack(job_world_files),
        **task_tables(config["mitigation"]["tasks"]),
        base=base_model(),
    output:
        metrics=f"results/{{study}}/{MITIGATION_JOB}/metrics.csv",
        prompts=f"results/{{study}}/{MITIGATION_JOB}/prompts.parquet",
    params:
        code=code_hash("mitigation"),
        checkpoint=checkpoint(),
        mitigation=config["mitigation"],
        n_pos=REBOUND["n_pos"],
        n_neg=REBOUND["n_neg"],
        train=REGIME,
        context=config["pretrain"]["context"],
        evaluate=config["evaluate"],
        runtime=RUN["model"],
    log:
        f"results/{{study}}/logs/{MITIGATION_JOB}.log",
    benchmark:
        f"results/{{study}}/benchmarks/{MITIGATION_JOB}.tsv"
    threads: RUN["threads"]
    priority: longest_first(20)  # its jobs are the longest after pretraining
    resources:
        mem_mb=scaled_mem(RUN["mem_mb"]),
        runtime=RUN["runtime"],
        gpu=RUN["gpu"],
    conda:
        "../envs/springback.yaml"
    script:
        "../workflow/scripts/mitigation.py"
