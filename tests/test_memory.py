"""The memory estimates behind the refusals: parameters counted without building the network, and a batch
that cannot fit named by its options."""

import pytest

from lyricgen.errors import LyricgenError
from lyricgen.memory import available_bytes, check_decoding_fits, check_training_fits, net_parameters
from lyricgen.rnnlm import RNNLM, NetSettings

pytestmark = pytest.mark.portable  # also run inside the simulation of macOS and Windows (.ci/run)


@pytest.mark.parametrize(
    "settings",
    [
        NetSettings(50, "rnn", emb_dim=8, hidden_size=16),
        NetSettings(50, "gru", emb_dim=8, hidden_size=16, num_layers=3),
        NetSettings(50, "lstm", emb_dim=16, hidden_size=16, num_layers=2, tie_weights=True),
        NetSettings(50, "lstm", emb_dim=8, hidden_size=16, num_layers=2, locked_dropout=True),
    ],
)
def test_parameters_are_counted_as_the_network_has_them(settings):
    assert net_parameters(settings) == sum(p.numel() for p in RNNLM(settings).parameters())


def test_a_batch_that_cannot_fit_names_batch_size_and_seq_len():
    assert available_bytes("cpu") > 10**6  # a figure on every system (this file also runs in the simulations)
    small = NetSettings(3000, emb_dim=8, hidden_size=8)
    check_training_fits(small, batch_size=4, seq_len=10, device="cpu")  # a few KB: fits
    with pytest.raises(
        LyricgenError, match=r"a batch of data.batch_size=1000000 x data.seq_len=100000 tokens .* lower"
    ):
        check_training_fits(small, batch_size=1_000_000, seq_len=100_000, device="cpu")


def test_decoding_buffers_name_the_option_that_makes_them_big():
    net = NetSettings(3000, emb_dim=8, hidden_size=8)
    check_decoding_fits(net, num_samples=4, length=100, rows_per_sample=6, device="cpu")
    with pytest.raises(LyricgenError, match="num_samples=10000000000 needs about .* lower num_samples"):
        check_decoding_fits(net, num_samples=10**10, length=100, rows_per_sample=1, device="cpu")
    with pytest.raises(LyricgenError, match="length=1000000000000 with num_samples=1 .* lower length"):
        check_decoding_fits(net, num_samples=1, length=10**12, rows_per_sample=1, device="cpu")
