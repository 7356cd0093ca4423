"""Entry point of the openr-math plugin: registers the math benchmark tasks (lazily)."""

from openr_core import hookimpl

TASKS = {
    "math": ("MathTask", "Math problems from a file or hub dataset you describe, graded with math-verify."),
    "math500": ("Math500Task", "MATH-500 competition problems (PRM800K test split), graded with math-verify."),
    "gsm8k": ("GSM8KTask", "GSM8K grade-school word problems (gold after '####'), graded with math-verify."),
    "aime24": ("AIME24Task", "AIME 2024: 30 problems with integer answers 0-999, graded with math-verify."),
    "amc23": ("AMC23Task", "AMC 2023: 40 problems with numeric answers, graded with math-verify."),
    "minerva": ("MinervaTask", "Minerva OCW-courses STEM problems (gold in the solution's \\boxed{}), graded with math-verify."),
    "olympiadbench": ("OlympiadBenchTask", "OlympiadBench open-ended English text-only math (675), graded with math-verify."),
}


@hookimpl
def register_tasks(register):
    for name, (cls, doc) in TASKS.items():
        register(name, f"openr_math.tasks:{cls}", doc=doc)
