rule screen:
    input:
        **task_tables(REBOUND["tasks"]),
        pretrain_heldout=world_tables()["pretrain_heldout"],
        base=base_model(REPRESENTATIVE),
    output:
        screen=report(
            "results/{study}/tables/screen.csv",
            caption="../report/screen.rst",
            category="2. Regime",
        ),
    params:
        code=code_hash("screen"),
        checkpoint=checkpoint(REPRESENTATIVE),
        screen=config["screen"],
        tasks=REBOUND["tasks"],
        batch_size=REBOUND["batch_size"],
        n_neg=REBOUND["n_neg"],
        evaluate=config["evaluate"],
        claims=config["claims"],
        runtime=RUN["model"],
    log:
        "results/{study}/logs/screen.log",
    benchmark:
        "results/{study}/benchmarks/screen.tsv"
    threads: RUN["threads"]
    resources:
        mem_mb=scaled_mem(RUN["mem_mb"]),
        runtime=RUN["runtime"],
        gpu=RUN["gpu"],
    conda:
        "../envs/springback.yaml"
    script:
        "../workflow/scripts/screen.py"
