"""Form decoding: lyrics that rhyme, have exact line lengths, an acrostic and keywords, and copy no
training run — from any word-level checkpoint, at decoding time.

Words are 1-4 characters long, so a line cannot be cut to length or made to rhyme after the fact. Each
step masks the words that would break a constraint *or make it impossible to meet later*, one rule a class
(`lyricgen.decoding.rules`): the line's budget of characters with its rhyme and keyword look-ahead, the
acrostic, spacing and `no_copy`, over per-word tables (`WordTables`: counted characters, first character,
rhyme class, and for each class its shortest word).

Masking alone meets the constraints but reads worse than free sampling (the model is pushed into words
it did not want). So each line is decoded as `best_of` sampled candidates per sample, all in one batch,
and the candidate that the mask bent least, nudged toward likely lines, is kept (`lyricgen.decoding.line`).
Keeping the likeliest candidate alone (lowest mean NLL) halves perplexity but collapses onto frequent words
(distinct-2 0.36 against 0.69 unconstrained); the kept one reads a little better than free sampling with
nearly its variety (docs/generation.md). The first line of a rhyme group also picks the group's class, and a
group's later lines end on other words than its earlier ones when the class has enough words. Before
decoding, `FormPlan` checks that every line can be written at all and refuses, naming the line and the
constraint, when it cannot; a line that still fails (every candidate blocked, e.g. by `no_copy`) is
retried, then refused the same way.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from lyricgen.data.ngrams import NgramIndex
from lyricgen.data.vocab import Vocab
from lyricgen.decoding.line import Candidates, Line, LineDecoder
from lyricgen.decoding.options import DecodingOptions
from lyricgen.decoding.plan import FormPlan, LineSpec
from lyricgen.decoding.rules import Acrostic, FreshEndings, LineBudget, LineState, NoCopy, Rhyme, Rule, Spacing
from lyricgen.decoding.sampling import RepetitionPenalty, Sampler
from lyricgen.decoding.tables import WordTables
from lyricgen.decoding.templates import Template
from lyricgen.errors import LyricgenError
from lyricgen.rnnlm import RNNLM, Hidden, assign_hidden, select_hidden

RETRIES = 3  # further tries of a line whose candidates were all blocked


@dataclass
class Written:
    """What the samples have written so far, line after line (samples on dim 0)."""

    logits: torch.Tensor  # the next step's logits
    hidden: Hidden
    group_cls: torch.Tensor  # the rhyme class each letter of the scheme took (samples x letters; -1: not yet)
    seen: torch.Tensor  # the words used (samples x vocab)
    ended_on: torch.Tensor  # the words that ended each letter's lines (samples x letters x vocab)
    out: list[list[int]]  # the new ids of each sample


class FormDecoder:
    """Decodes `num_samples` lyrics line by line under a `FormPlan`."""

    def __init__(
        self,
        net: RNNLM,
        vocab: Vocab,
        tables: WordTables,
        opts: DecodingOptions,
        ngrams: NgramIndex | None,
        generator: torch.Generator | None,
        template: Template | None = None,
    ) -> None:
        self.net, self.vocab, self.t, self.opts = net, vocab, tables, opts
        self.ngrams, self.template = ngrams, template
        self.sampler = Sampler(opts, generator)
        self.device = next(net.parameters()).device
        self.n = opts.no_copy
        self.fast = True  # the unbranched start of a single sample's line in Python numbers (same draws)
        if self.n and ngrams is None:
            raise LyricgenError(
                "this checkpoint has no n-gram index of its training text, which no_copy needs; retrain the model "
                "with this version of lyricgen (python scripts/train.py ...), or generate without no_copy"
            )
        if self.n and self.n > ngrams.max_n:
            raise LyricgenError(
                f"no_copy must be between 2 and {ngrams.max_n} for this checkpoint (its n-gram index), got {self.n}"
            )

    @torch.inference_mode()
    def decode(self, prompt_ids: list[int]) -> list[list[int]]:
        """The new ids of each sample (the prompt excluded), ending with a line break after each line."""
        t = self.t
        was_training = self.net.training
        self.net.eval()
        cut = max((i + 1 for i, tok in enumerate(prompt_ids) if tok == t.newline), default=0)
        prompt_line = prompt_ids[cut:]
        plan = FormPlan(self.opts, t, self.vocab, [w for w in prompt_line if w != t.space], self.template)
        written = self._start(prompt_ids, plan)
        for i, spec in enumerate(plan.lines):
            todo = torch.arange(self.opts.num_samples, device=self.device)
            for attempt in range(1 + RETRIES):
                line = self._line(plan, i, prompt_line if i == 0 else [], todo, written, fresh=attempt == 0)
                self._keep(written, spec, todo, line)
                todo = todo[~line.ok]
                if not len(todo):
                    break
            else:
                blocker = f" and no_copy={self.n}" if self.n else ""
                raise LyricgenError(
                    f"could not write {plan.where(i)}{blocker}: every candidate ran out of allowed words; "
                    "loosen a constraint (a larger no_copy, other line_chars or acrostic) or try another seed"
                )
        self.net.train(was_training)
        return written.out

    def _start(self, prompt_ids: list[int], plan: FormPlan) -> Written:
        """The prompt read in once for all samples."""
        S, V, dev = self.opts.num_samples, len(self.vocab), self.device
        context = torch.tensor(prompt_ids or [self.t.newline], device=dev).expand(S, -1)
        logits, hidden = self.net(context)
        seen = torch.zeros(S, V, dtype=torch.bool, device=dev)
        seen[:, prompt_ids] = True
        letters = max(1, len(plan.letters))
        return Written(
            logits=logits[:, -1].float(),
            hidden=hidden,
            group_cls=torch.full((S, letters), -1, dtype=torch.long, device=dev),
            seen=seen,
            ended_on=torch.zeros(S, letters, V, dtype=torch.bool, device=dev),
            out=[[] for _ in range(S)],
        )

    def rules(
        self, plan: FormPlan, i: int, words: list[int], samples: torch.Tensor, written: Written, fresh: bool
    ) -> tuple[LineBudget, list[Rule]]:
        """The rules of line i for `samples`, which begin it with `words`; `fresh`: ask the line to end on
        another word than its rhyme group's earlier lines (the first try of a line only)."""
        spec, t = plan.lines[i], self.t
        end = spec.end[0] if spec.end else t.newline  # the token that ends this line (or clause)
        rhyme = Rhyme(plan, spec, written.group_cls[samples])
        ended = None
        if fresh and spec.group is not None:
            ended = written.ended_on[samples, spec.group] & t.rich[None, :]
        keywords = torch.tensor(spec.keywords, dtype=torch.long, device=self.device)
        budget = LineBudget(spec, t, FreshEndings(ended).ends(rhyme.ends()), rhyme.min_end, end, keywords)
        rules: list[Rule] = [Acrostic(plan.first_words(i))] if spec.acrostic and not words else []
        rules.append(Spacing(t, end))
        if self.n:
            rules.append(NoCopy(self.ngrams, self.n))
        return budget, rules

    def _line(
        self, plan: FormPlan, i: int, start: list[int], samples: torch.Tensor, written: Written, fresh: bool
    ) -> Line:
        """Line i of each sample in `samples`, which begin it with `start`: the best of its candidates."""
        spec, t, opts = plan.lines[i], self.t, self.opts
        words = [w for w in start if w != t.space]
        budget, rules = self.rules(plan, i, words, samples, written, fresh)
        state = LineState.start(len(samples), words, t, self.device)
        seen = written.seen[samples]
        budget.start(state, seen)
        for rule in rules:
            rule.start(state, words)
        penalty = None
        if opts.repetition_penalty > 1:
            penalty = RepetitionPenalty(opts.repetition_penalty, [x for x in (t.newline, t.space) if x >= 0])
            state.seen = seen.clone()
        cand = Candidates.start(
            written.logits[samples].clone(), select_hidden(written.hidden, samples), 2 * spec.hi + 2, budget.end
        )
        best_of = 1 if opts.strategy == "greedy" else opts.best_of
        decoder = LineDecoder(self.net, t, self.sampler, budget, rules, penalty, best_of, budget.end)
        return decoder.decode(state, cand, fast=self.fast)

    def _keep(self, written: Written, spec: LineSpec, todo: torch.Tensor, line: Line) -> None:
        """Write the lines of the samples that got one; read in what follows a clause's end."""
        t, ok = self.t, line.ok
        done = todo[ok]
        if not len(done):
            return
        assign_hidden(written.hidden, done, line.hidden, ok.nonzero().squeeze(1))
        written.logits[done] = line.logits[ok]
        if len(spec.end) > 1:  # what follows the sampled end (a clause's line break) is read in
            after = torch.tensor(spec.end[1:], device=self.device).expand(len(done), -1)
            step_logits, step_hidden = self.net(after, select_hidden(written.hidden, done))
            assign_hidden(written.hidden, done, step_hidden, torch.arange(len(done), device=self.device))
            written.logits[done] = step_logits[:, -1].float()
        for k, s in enumerate(todo.tolist()):
            if bool(ok[k]):
                written.out[s].extend(line.tokens[k] + list(spec.end[1:]))
                written.seen[s, line.tokens[k]] = True
                words = [w for w in line.tokens[k] if w not in (t.newline, t.space, *spec.end)]
                if spec.group is not None and words:
                    written.ended_on[s, spec.group, words[-1]] = True
        if spec.group is not None:
            unset = written.group_cls[done, spec.group] < 0
            written.group_cls[done[unset], spec.group] = line.classes[ok][unset]
