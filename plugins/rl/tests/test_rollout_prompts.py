"""RL rollouts train on the prompt ids the generator fed the policy: a chat-templated Llama-3
prompt (its text starts with <|begin_of_text|>, and the tokenizer adds one too) gets one BOS."""

from openr_core.types import Completion, GenerationResult
from openr_rl.rollouts import sample
from openr_transformers import replicas


class _Task:
    def prompt(self, problem):
        return problem.question

    def split_steps(self, text):
        return [s for s in text.split("\n\n") if s]

    def grade(self, problem, text):
        from openr_core.types import Grade
        return Grade(correct=False)


class _Generator:
    def generate(self, requests):
        return [GenerationResult([Completion("one.\n\ntwo.", n_tokens=3, stop_reason="length")] * r.params.n)
                for r in requests]


def test_chat_prompt_rollouts_carry_one_bos():
    from openr_core.types import Problem

    tokenizer = replicas.llama3_tokenizer([q + a for q, a in replicas.solutions(40)])
    bos = tokenizer.bos_token_id
    question = tokenizer.apply_chat_template([{"role": "user", "content": "what is 2 plus 3?"}], tokenize=False,
                                             add_generation_prompt=True)
    assert question.startswith("<|begin_of_text|>") and tokenizer(question)["input_ids"][:2] == [bos, bos]
    rollouts = sample(_Generator(), _Task(), [Problem("p0", question)], tokenizer, n=2, temperature=1.0, top_p=1.0,
                      max_tokens=8, seed=0, update=0)
    expected = tokenizer.apply_chat_template([{"role": "user", "content": "what is 2 plus 3?"}], tokenize=True,
                                             add_generation_prompt=True)
    expected = list(expected["input_ids"] if hasattr(expected, "keys") else expected)
    assert [r.prompt_ids for r in rollouts] == [expected, expected]
    assert expected.count(bos) == 1
