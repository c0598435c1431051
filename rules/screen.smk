rule screen:
    input:
        unpack(all_task_tables),
        base=screen_base,
        pretrain_heldout=world_tables()["pretrain_heldout"],
    output:
        screen=report(
            "results/{study}/tables/screen.csv",
            caption="../report/screen.rst",
            category="2. Regime",
        ),
    params:
        code=code_hash("screen"),
        screen=config["screen"],
        rebound={k: REBOUND[k] for k in ("tasks", "batch_size", "n_neg")},
        evaluate=config["evaluate"],
        claims=config["claims"],
        tokens=screen_tokens(),
        runtime=model_runtime(),
    log:
        "results/{study}/logs/screen.log",
    benchmark:
        "results/{study}/benchmarks/screen.tsv"
    threads: job_threads()
    resources:
        mem_mb=job_mem(4000),
        runtime=job_runtime(120),
        gpu=gpus(),
    conda:
        "../envs/springback.yaml"
    script:
        "../workflow/scripts/screen.py"
