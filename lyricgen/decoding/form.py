"""Form decoding: lyrics that rhyme, have exact line lengths, an acrostic and keywords, and copy no
training run — from any word-level checkpoint, at decoding time.

Words are 1-4 characters long, so a line cannot be cut to length or made to rhyme after the fact. Each
step masks the words that would break a constraint *or make it impossible to meet later*:

- per-word tables (`WordTables`): counted characters, first character, rhyme class, and for each class
  its shortest word, so that "can this line still end on the right class within its length?" is one
  comparison per word;
- a word may go in if the line can end right after it (length reached, class right, keywords placed) or
  if the room left still holds the keywords and the shortest word of an allowed class;
- a line break only where the line may end; the acrostic character is forced on the first word; `no_copy`
  removes every word that would complete a training run of n words (`NgramIndex`).

Masking alone meets the constraints but reads worse than free sampling (the model is pushed into words
it did not want). So each line is decoded as `best_of` sampled candidates per sample, all in one batch
(a line branches into them where the mask first removes more than 20% of the probability, so that the
free start of the line is decoded once), and the
candidate that the mask bent least, nudged toward likely lines, is kept: the highest sum of the log
probability mass the mask left at each step (log p(line) / q(line), its importance weight) and 0.42 times
its mean log-likelihood. Keeping the likeliest candidate alone (lowest mean NLL) halves perplexity but
collapses onto frequent words (distinct-2 0.36 against 0.69 unconstrained); the weight alone keeps free
sampling's perplexity and variety; together they read a little better than free sampling with nearly its
variety (README, "Lyrics with form"). The first line of a rhyme group also picks the group's class, and a
group's later lines end on other words than its earlier ones when the class has enough words. Before decoding,
`FormPlan` checks that every line can
be written at all and refuses, naming the line and the constraint, when it cannot; a line that still
fails (every candidate blocked, e.g. by `no_copy`) is retried, then refused the same way.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from lyricgen.data.ngrams import NgramIndex
from lyricgen.data.vocab import Vocab
from lyricgen.decoding.options import DecodingOptions
from lyricgen.decoding.plan import FormPlan, LineSpec
from lyricgen.decoding.sampling import penalize, pick_masked
from lyricgen.decoding.tables import BIG, WordTables
from lyricgen.decoding.templates import Template
from lyricgen.decoding.unbranched import LOG_BRANCH_MASS, unbranched_start
from lyricgen.errors import LyricgenError
from lyricgen.rnnlm import RNNLM, assign_hidden, select_hidden

RETRIES = 3  # further tries of a line whose candidates were all blocked
LIKELIHOOD_WEIGHT = 0.42  # measured against 0, 0.3, 0.35, 0.5 and 1 (README, "Lyrics with form")


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
        self.ngrams, self.generator, self.template = ngrams, generator, template
        self.device = next(net.parameters()).device
        self.n = opts.no_copy
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
        t, opts = self.t, self.opts
        was_training = self.net.training
        self.net.eval()
        cut = max((i + 1 for i, tok in enumerate(prompt_ids) if tok == t.newline), default=0)
        prompt_line = prompt_ids[cut:]
        plan = FormPlan(opts, t, self.vocab, [w for w in prompt_line if w != t.space], self.template)
        S, V = opts.num_samples, len(self.vocab)
        context = torch.tensor(prompt_ids or [t.newline], device=self.device).expand(S, -1)
        logits, hidden = self.net(context)
        logits = logits[:, -1].float()
        group_cls = torch.full((S, max(1, len(plan.letters))), -1, dtype=torch.long, device=self.device)
        seen = torch.zeros(S, V, dtype=torch.bool, device=self.device)
        seen[:, prompt_ids] = True
        out: list[list[int]] = [[] for _ in range(S)]
        # the words that ended a sample's earlier lines of each rhyme group: a rhyme wants another word
        ended_on = torch.zeros(S, max(1, len(plan.letters)), V, dtype=torch.bool, device=self.device)
        for i, spec in enumerate(plan.lines):
            start = prompt_line if i == 0 else []
            todo = torch.arange(S, device=self.device)
            for attempt in range(1 + RETRIES):
                fresh = None  # after a failed try, the ending may repeat an earlier one
                if spec.group is not None and attempt == 0:
                    fresh = ended_on[todo, spec.group] & self.t.rich[None, :]
                lines, rows_hidden, rows_logits, rows_cls, ok = self._line(
                    plan, i, spec, start, todo, hidden, logits, group_cls, seen, fresh
                )
                done = todo[ok]
                if len(done):
                    assign_hidden(hidden, done, rows_hidden, ok.nonzero().squeeze(1))
                    logits[done] = rows_logits[ok]
                    if len(spec.end) > 1:  # what follows the sampled end (a clause's line break) is read in
                        after = torch.tensor(spec.end[1:], device=self.device).expand(len(done), -1)
                        step_logits, step_hidden = self.net(after, select_hidden(hidden, done))
                        assign_hidden(hidden, done, step_hidden, torch.arange(len(done), device=self.device))
                        logits[done] = step_logits[:, -1].float()
                    for k, s in enumerate(todo.tolist()):
                        if bool(ok[k]):
                            out[s].extend(lines[k] + list(spec.end[1:]))
                            seen[s, lines[k]] = True
                            words = [w for w in lines[k] if w not in (t.newline, t.space, *spec.end)]
                            if spec.group is not None and words:
                                ended_on[s, spec.group, words[-1]] = True
                    if spec.group is not None:
                        unset = group_cls[done, spec.group] < 0
                        group_cls[done[unset], spec.group] = rows_cls[ok][unset]
                todo = todo[~ok]
                if not len(todo):
                    break
            else:
                blocker = f" and no_copy={self.n}" if self.n else ""
                raise LyricgenError(
                    f"could not write {plan.where(i)}{blocker}: every candidate ran out of allowed words; "
                    "loosen a constraint (a larger no_copy, other line_chars or acrostic) or try another seed"
                )
        self.net.train(was_training)
        return out

    def _line(
        self,
        plan: FormPlan,
        i: int,
        spec: LineSpec,
        start: list[int],
        samples: torch.Tensor,
        hidden,
        logits: torch.Tensor,
        group_cls: torch.Tensor,
        seen: torch.Tensor,
        fresh: torch.Tensor | None,
    ):
        """Decode line i for each sample in `samples`, as `best_of` candidates, and keep each sample's best.

        A sample's line starts as one row and branches into `best_of` candidate rows at the first step
        where the mask takes away more than `1 - BRANCH_MASS` of the probability: until then the
        constraints do not bite and the candidates would only repeat free sampling at K times the cost.
        `fresh` (samples x vocab) marks words this line may not end on (earlier endings of its rhyme group).
        Returns the chosen ids per sample, their hidden states and next-step logits, the class each line
        ended on, and which samples got a line at all.
        """
        t, opts, dev = self.t, self.opts, self.device
        K = 1 if opts.strategy == "greedy" else opts.best_of
        R = len(samples)
        end = spec.end[0] if spec.end else t.newline  # the token that ends this line (or clause)
        h = select_hidden(hidden, samples)
        words = [w for w in start if w != t.space]
        ctx_len = max(self.n - 1, 1)
        ctx = torch.full((R, ctx_len), -1, dtype=torch.long, device=dev)
        if words:
            tail = words[-ctx_len:]
            ctx[:, ctx_len - len(tail) :] = torch.tensor(tail, device=dev)
        # allowed end classes per row: the group's class once set, else every class the group can take
        if spec.group is None:
            cls_ok = torch.ones(R, t.none + 1, dtype=torch.bool, device=dev)
        else:
            cls_ok = plan.group_classes[spec.group].expand(R, -1).clone()
            chosen = group_cls[samples, spec.group]
            has = chosen >= 0
            cls_ok[has] = False
            cls_ok[has, chosen[has]] = True
            # a new letter takes a class that no other letter of the sample has, where one is left
            taken = torch.zeros_like(cls_ok)
            others = group_cls[samples]
            taken.scatter_(1, others.clamp(min=0), others >= 0)
            fresh_cls = cls_ok & ~taken
            use = ~has & fresh_cls.any(dim=1)
            cls_ok[use] = fresh_cls[use]
        m_row = torch.where(cls_ok, t.class_min, BIG).min(dim=1).values
        if spec.group is None:
            m_row = torch.ones_like(m_row)
        kw = torch.tensor(spec.keywords, dtype=torch.long, device=dev)
        kw_len = t.chars[kw] if len(kw) else torch.zeros(0, dtype=torch.long, device=dev)
        starts = plan.first_words(i) if spec.acrostic else None
        table = None if len(kw) else self._word_table(spec, cls_ok, m_row, starts, fresh)  # one per sample
        per = 1  # rows per sample: K once the line has branched
        # per-row state (rows on dim 0), copied K times when the line branches
        st = {
            "logits": logits[samples].clone(),
            "u": torch.full((R,), sum(int(t.chars[w]) for w in words), dtype=torch.long, device=dev),
            "last_cls": torch.full((R,), t.class_of(words[-1]) if words else t.none, dtype=torch.long, device=dev),
            "prev_space": torch.zeros(R, dtype=torch.bool, device=dev),
            "ctx": ctx,
            "cls_ok": cls_ok,
            "m_row": m_row,
            "kw_left": ~seen[samples][:, kw] if len(kw) else torch.zeros(R, 0, dtype=torch.bool, device=dev),
            "log_mass": torch.zeros(R, device=dev),
            "logp": torch.zeros(R, device=dev),
            "ntok": torch.zeros(R, dtype=torch.long, device=dev),
            "finished": torch.zeros(R, dtype=torch.bool, device=dev),
            "dead": torch.zeros(R, dtype=torch.bool, device=dev),
            "tokens": torch.full((R, 2 * spec.hi + 2), end, dtype=torch.long, device=dev),
            "final_logits": torch.zeros_like(logits[samples]),
            "seen": seen[samples].clone() if opts.repetition_penalty > 1 else None,
            "no_end": fresh,
            "last_word": torch.full((R,), words[-1] if words else -1, dtype=torch.long, device=dev),
        }
        final_h = select_hidden(h, torch.arange(R, device=dev))
        start, branch_now = 0, False
        if R == 1 and K > 1 and not len(kw) and st["seen"] is None:  # the common case, in Python numbers
            start, branch_now, h, final_h = unbranched_start(self, spec, st, table, h, final_h, words, end)
        for pos in range(start, st["tokens"].size(1)):
            active = ~st["finished"] & ~st["dead"]
            if not bool(active.any()):
                break
            kw_need = (st["kw_left"] * kw_len).sum(dim=1) if len(kw) else None
            allowed = self._allowed(
                spec,
                st["u"],
                st["last_cls"],
                st["prev_space"],
                st["cls_ok"],
                st["m_row"],
                kw,
                st["kw_left"],
                kw_need,
                starts,
                st["ctx"],
                table,
                st["no_end"],
                st["last_word"],
                end,
            )
            stuck = ~allowed.any(dim=1)
            if bool(stuck.any()):
                st["dead"] |= active & stuck
                active &= ~stuck
                if not bool(active.any()):
                    break
            if not bool(active.all()):
                allowed &= active[:, None]
                allowed[:, end] |= ~active  # finished or dead rows idle on the line's end
            step = st["logits"]
            if st["seen"] is not None:
                step = penalize(step, st["seen"], opts.repetition_penalty, [x for x in (t.newline, t.space) if x >= 0])
            token, mass = None, None
            if not branch_now:
                token, mass = pick_masked(step, allowed, opts, self.generator)
            if per == 1 and K > 1 and (branch_now or bool((mass < LOG_BRANCH_MASS)[active].any())):
                # the mask bites: this step is drawn again, by K copies of each row
                rows = torch.arange(len(active), device=dev).repeat_interleave(K)
                st = {k: None if v is None else v[rows] for k, v in st.items()}
                h, final_h = select_hidden(h, rows), select_hidden(final_h, rows)
                allowed, active, step = allowed[rows], active[rows], step[rows]
                per, branch_now = K, False
                token, mass = pick_masked(step, allowed, opts, self.generator)
            st["log_mass"] += torch.where(active, mass, 0.0)  # the log of the mass the mask left to the sampler
            logp = st["logits"].log_softmax(dim=1).gather(1, token[:, None]).squeeze(1)  # under the model itself
            st["logp"] += torch.where(active, logp, 0.0)
            st["ntok"] += active.long()
            st["tokens"][:, pos] = token  # finished and dead rows write line breaks past their end
            is_word = (token != end) & (token != t.space)  # idle rows get the line's end: never words
            st["u"] += t.chars[token]  # line breaks and spaces count 0
            st["prev_space"] = token == t.space
            st["last_cls"] = torch.where(is_word, t.cls[token], st["last_cls"])
            st["last_word"] = torch.where(is_word, token, st["last_word"])
            if self.n:
                shifted = torch.cat([st["ctx"][:, 1:], token[:, None]], dim=1)
                st["ctx"] = torch.where(is_word[:, None], shifted, st["ctx"])
            if len(kw):
                st["kw_left"] &= ~((kw[None, :] == token[:, None]) & is_word[:, None])
            if st["seen"] is not None:
                st["seen"][torch.arange(len(token), device=dev)[active], token[active]] = True
            out, h = self.net(token[:, None], h)
            st["logits"] = out[:, 0].float()
            ended = active & (token == end)
            if bool(ended.any()):
                rows = ended.nonzero().squeeze(1)
                assign_hidden(final_h, rows, h, rows)
                st["final_logits"][rows] = st["logits"][rows]
            st["finished"] |= ended
        good = st["finished"] & ~st["dead"]
        # Keep the candidate that the constraints bent least, nudged toward likely lines: the log of the
        # probability mass the mask left over its steps (its importance weight p(line) / q(line)) plus
        # LIKELIHOOD_WEIGHT times its mean log-likelihood. The likeliest line alone (lowest mean NLL)
        # reads smoother but collapses onto frequent words; the weight alone keeps free sampling's variety.
        crit = st["log_mass"] + LIKELIHOOD_WEIGHT * st["logp"] / st["ntok"].clamp(min=1)
        best = torch.where(good, crit, -math.inf).view(-1, per).argmax(dim=1)
        chosen_rows = torch.arange(R, device=dev) * per + best
        ok = good[chosen_rows]
        lines = [st["tokens"][r, : int(st["ntok"][r])].tolist() for r in chosen_rows.tolist()]
        return (
            lines,
            select_hidden(final_h, chosen_rows),
            st["final_logits"][chosen_rows],
            st["last_cls"][chosen_rows],
            ok,
        )

    def _word_table(
        self, spec: LineSpec, cls_ok: torch.Tensor, m_row: torch.Tensor, starts, no_end: torch.Tensor | None
    ) -> torch.Tensor:
        """For a line without keywords: which words may follow `u` characters, for every u in 0..hi and
        every row pattern of `cls_ok` (rows x (hi + 1) x vocab), so that a step is one lookup."""
        t = self.t
        u = torch.arange(spec.hi + 1, device=t.chars.device)
        u2 = u[None, :, None] + t.chars[None, None, :]  # 1 x (hi+1) x V
        end_ok = cls_ok.index_select(1, t.cls)
        if no_end is not None:
            end_ok = end_ok & ~no_end
        end_ok = end_ok[:, None, :]  # rows x 1 x V
        can_end = (u2 >= spec.lo) & end_ok
        can_go_on = (spec.hi - u2) >= m_row[:, None, None]
        table = t.word_ok & (u2 <= spec.hi) & (can_end | can_go_on)
        if starts is not None:
            table[:, 0] &= starts
        return table

    def _allowed(
        self,
        spec: LineSpec,
        u,
        last_cls,
        prev_space,
        cls_ok,
        m_row,
        kw,
        kw_left,
        kw_need,
        starts,
        ctx,
        table=None,
        no_end=None,
        last_word=None,
        end: int = -1,
    ):
        """Which words each row may write next without breaking a constraint now or later (rows x vocab)."""
        t = self.t
        if table is not None:
            at = u.clamp(max=spec.hi)
            if len(u) > 1:  # row r reads the table of its sample: rows are samples x candidates
                at = at + torch.arange(len(u), device=u.device) // (len(u) // table.size(0)) * (spec.hi + 1)
            allowed = table.view(-1, table.size(-1)).index_select(0, at)
        else:  # a line with keywords: what may go in depends on the keywords each row has still to place
            u2 = u[:, None] + t.chars[None, :]
            still = torch.zeros_like(u2, dtype=torch.bool)
            still[:, kw] = kw_left
            need_after = kw_need[:, None] - torch.where(still, t.chars[None, :], 0)
            end_cls_ok = cls_ok.index_select(1, t.cls)
            if no_end is not None:
                end_cls_ok &= ~no_end
            can_end = (u2 >= spec.lo) & end_cls_ok & (need_after == 0)
            can_go_on = (spec.hi - u2) >= need_after + m_row[:, None]
            allowed = t.word_ok[None, :] & (u2 <= spec.hi) & (can_end | can_go_on)
            if starts is not None:
                at_start = u == 0
                allowed[at_start] &= starts
        free = ~prev_space & (u >= 1)
        if t.space >= 0:
            need = m_row if kw_need is None else kw_need + m_row
            allowed[:, t.space] = free & (spec.hi - u >= need)
        ends = free & (u >= spec.lo) & cls_ok.gather(1, last_cls[:, None]).squeeze(1)
        if no_end is not None:
            ends &= ~no_end.gather(1, last_word.clamp(min=0)[:, None]).squeeze(1)
        allowed[:, end] = ends if kw_need is None else ends & (kw_need == 0)
        if self.n:
            full = (ctx >= 0).all(dim=1)
            for r in full.nonzero().squeeze(1).tolist():
                blocked = self.ngrams.followers(ctx[r].tolist())
                if len(blocked):
                    allowed[r, torch.from_numpy(np.asarray(blocked)).to(allowed.device)] = False
        return allowed
