rule evaluate_rebound:
    input:
        unpack(all_task_tables),
        unpack(judge_dirs),
        base=base_models,
        perturbed=rules.perturb.output.models,
        pretrain_heldout=world_tables()["pretrain_heldout"],
    output:
        metrics="results/{study}/metrics/{size}/tokens-{tokens}.csv",
        prompts="results/{study}/metrics/{size}/tokens-{tokens}.prompts.parquet",
    params:
        code=code_hash("evaluate", "compress", "judge", "world", "models", "data", "pipeline/evaluation", "pipeline/finetune"),
        phase=phase_settings(2),
        evaluate=config["evaluate"],
        judges=HUB["judges"],
        runtime=model_runtime(),
    log:
        "results/{study}/logs/evaluate/{size}/tokens-{tokens}.log",
    benchmark:
        "results/{study}/benchmarks/evaluate/{size}/tokens-{tokens}.tsv"
    threads: 2
    resources:
        mem_mb=job_mem(6000),
        runtime=job_runtime(240),
        gpu=gpus(),
    conda:
        "../envs/springback.yaml"
    script:
        "../workflow/scripts/evaluate_rebound.py"


rule evaluate_ladder:
    input:
        unpack(all_task_tables),
        unpack(judge_dirs),
        models=ladder_dirs,
        pretrain_heldout=world_tables()["pretrain_heldout"],
    output:
        metrics="results/{study}/metrics/ladder.csv",
    params:
        code=code_hash("evaluate", "compress", "judge", "world", "models", "data", "pipeline/evaluation", "pipeline/finetune"),
        tasks=REBOUND["tasks"],
        ladder=all_ladder_checkpoints,
        evaluate=config["evaluate"],
        judges=HUB["judges"],
        runtime=model_runtime(),
        seed=config["pretrain"]["seed"],
    log:
        "results/{study}/logs/evaluate/ladder.log",
    benchmark:
        "results/{study}/benchmarks/evaluate/ladder.tsv"
    threads: 2
    resources:
        mem_mb=job_mem(6000),
        runtime=job_runtime(120),
        gpu=gpus(),
    conda:
        "../envs/springback.yaml"
    script:
        "../workflow/scripts/evaluate_ladder.py"
