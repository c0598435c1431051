# A job holds every run of one base (rebound.job: base; toy mode, an ensemble) or one run
# (rebound.job: run; hub mode, one GPU job per base x task x direction x fine-tuning seed).
rule rebound:
    input:
        unpack(all_task_tables),
        unpack(judge_dirs),
        base=base_checkpoint,
        pretrain_heldout=world_table("pretrain_heldout"),
    output:
        metrics=rebound_path(f"{REBOUND_JOB}{{run}}/metrics.csv"),
        prompts=rebound_path(f"{REBOUND_JOB}{{run}}/prompts.parquet"),
        documents=rebound_path(f"{REBOUND_JOB}{{run}}/documents.parquet"),
        models=directory(rebound_path(f"{REBOUND_JOB}{{run}}/models")),
    params:
        code=code_hash("rebound"),
        rebound=rebound_settings,
        ensemble=REBOUND["ensemble"],
        evaluate=config["evaluate"],
        judges=HUB["judges"],
        runtime=model_runtime(),
    log:
        rebound_path("results/{study}/logs/rebound/{world}/{size}/pseed-{pseed}/tokens-{tokens}{run}.log"),
    benchmark:
        rebound_path("results/{study}/benchmarks/rebound/{world}/{size}/pseed-{pseed}/tokens-{tokens}{run}.tsv")
    threads: job_threads()
    priority: longest_first(10)  # after pretraining and algorithms, larger sizes first
    resources:
        mem_mb=job_mem(4000),
        runtime=job_runtime(120),
        gpu=gpus(),
    conda:
        "../envs/springback.yaml"
    script:
        "../workflow/scripts/rebound.py"
