from lyricgen.cli import quote_non_ascii


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
