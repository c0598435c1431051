# A job holds every run of one base (rebound.job: base; toy mode, an ensemble) or one run
# (rebound.job: run; hub mode, one GPU job per base x task x direction x fine-tuning seed).
rule rebound:
    input:
        unpack(job_world_files),
        **task_tables(REBOUND["tasks"]),
        **judge_dirs(),
        base=base_model(),
    output:
        metrics=f"results/{{study}}/{REBOUND_JOB}/metrics.csv",
        prompts=f"results/{{study}}/{REBOUND_JOB}/prompts.parquet",
        documents=f"results/{{study}}/{REBOUND_JOB}/documents.parquet",
        models=directory(f"results/{{study}}/{REBOUND_JOB}/models"),
    params:
        code=code_hash("rebound"),
        checkpoint=checkpoint(),
        rebound=rebound_settings,
        ensemble=REBOUND["ensemble"],
        evaluate=config["evaluate"],
        judges=HUB["judges"],
        runtime=RUN["model"],
    log:
        f"results/{{study}}/logs/{REBOUND_JOB}.log",
    benchmark:
        f"results/{{study}}/benchmarks/{REBOUND_JOB}.tsv"
    threads: RUN["threads"]
    priority: longest_first(10)  # after pretraining and algorithms, larger sizes first
    resources:
        mem_mb=scaled_mem(RUN["mem_mb"]),
        runtime=RUN["runtime"],
        gpu=RUN["gpu"],
    conda:
        "../envs/springback.yaml"
    script:
        "../workflow/scripts/rebound.py"
