import pytest

from lyricgen.cli import check_overrides, quote_non_ascii
from tests.conftest import CONF, assert_user_error, run_script

pytestmark = pytest.mark.portable  # also run inside the simulation of macOS and Windows (.ci/run)


def test_non_ascii_values_are_quoted_for_hydra():
    argv = [
        "train.py",
        "start_word=星星",
        "prompts=[星星,月亮]",
        "data.path=/歌词/my songs.txt",
        "seed=3",
        "k=",
        "s='已引'",
    ]
    assert quote_non_ascii(argv) == [
        "train.py",
        "start_word='星星'",
        "prompts=['星星','月亮']",
        "data.path='/歌词/my songs.txt'",
        "seed=3",
        "k=",
        "s='已引'",
    ]


@pytest.mark.parametrize(
    "config, overrides, message",
    [
        (
            "train",
            ["model.hiden_size=64"],
            "error: model.hiden_size is not a setting of train.py (did you mean "
            "model.hidden_size?); check its spelling, or if it is new, add it with +model.hiden_size=64",
        ),
        (
            "generate",
            ["temprature=0.5"],
            "error: temprature is not a setting of generate.py (did you mean temperature?)",
        ),
        ("train", ["model=rnnn"], "error: model=rnnn is not one of the model configs; choose one of gru, lstm, rnn"),
        ("train", ["data=jaychou", "trainer.max_epochs=[1"], "error: no viable alternative at input '[1'"),
        ("train", ["model=rnn,gru"], "error: Ambiguous value for argument 'model=rnn,gru'; 1. To use it as a list"),
    ],
)
def test_a_mistake_in_the_overrides_is_refused_in_one_line(config, overrides, message, capsys):
    with pytest.raises(SystemExit) as exit_:
        check_overrides([f"{config}.py", *overrides], CONF, config)
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith(message) and err.count("\n") == 1


def test_overrides_hydra_accepts_pass_and_hydra_flags_are_left_to_hydra(capsys):
    given = ["experiment=jaychou_best", "++trainer.max_steps=1", "+trainer.fast_dev_run=true", "hydra.run.dir=x"]
    check_overrides(["train.py", *given, "callbacks.early_stopping=null", "~cache"], CONF, "train")
    check_overrides(["train.py", "--multirun", "model=rnn,gru"], CONF, "train")  # a sweep: Hydra's own
    assert capsys.readouterr().err == ""


def test_a_script_refuses_a_misspelt_key_before_loading_anything():
    done = run_script("generate", "temprature=0.5", "ckpt_path=/no/such.ckpt", timeout=60)
    assert_user_error(done)
    assert done.stderr.strip() == (
        "error: temprature is not a setting of generate.py (did you mean temperature?); check its spelling, "
        "or if it is new, add it with +temprature=0.5"
    )


def test_a_full_disk_anywhere_ends_in_one_line_and_other_os_errors_stay_tracebacks(capsys):
    import errno
    import os

    from lyricgen.cli import user_errors

    def write_results():
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), "run/results.json")

    with pytest.raises(SystemExit) as stop, user_errors():
        try:
            write_results()
        except OSError as e:  # raised while handling it, as a library might
            raise RuntimeError("could not finish") from e
    assert stop.value.code == 2
    assert capsys.readouterr().err == (
        "error: the disk is full (No space left on device) writing run/results.json; free some space there and "
        "run the command again (a training resumes from its last checkpoint: ckpt_path=RUN/checkpoints/last.ckpt)\n"
    )
    with pytest.raises(PermissionError), user_errors():  # not the user's to fix this way: the traceback stays
        raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), "run/results.json")
