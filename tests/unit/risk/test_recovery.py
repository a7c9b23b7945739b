"""Recoveries after write-off (004 §4(1)6, DOMAIN §7): a recovery goes back to those who bore
the loss pro rata to what each still bears, in fen by the loss split's largest remainder rule;
checked by hand and against the independent reference model (tests/reference/losses.py)."""

from __future__ import annotations

from decimal import Decimal
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.risk.domain.loss import split_loss
from services.risk.domain.recovery import PARTIES, allocate_recovery
from tests.reference.losses import DEFAULT_WEIGHTS, ReferenceLoss, largest_remainder

D = Decimal


def _yuan(fen: int) -> Decimal:
    return Decimal(fen).scaleb(-2)


def _fraction(amount: Decimal) -> Fraction:
    return Fraction(amount)


def test_a_household_loss_recovered_10000_by_hand() -> None:
    # The loss 12,345.67 (1,234,567 fen) split 30/20/50: 3,703.70 / 2,469.13 / 6,172.84.
    borne = {"mutual_guarantee": D("0.00"), **split_loss(D("12345.67"))}
    assert borne == {
        "mutual_guarantee": D("0.00"),
        "government": D("3703.70"),
        "bank": D("2469.13"),
        "insurer": D("6172.84"),
    }
    # 10,000.00 is 1,000,000 fen; each party's exact part is 1,000,000 x its fen / 1,234,567:
    #   government 370,370,000,000 / 1,234,567 = 299,999.919  -> floor 299,999
    #   bank       246,913,000,000 / 1,234,567 = 199,999.676  -> floor 199,999
    #   insurer    617,284,000,000 / 1,234,567 = 500,000.405  -> floor 500,000
    # Floors sum to 999,998: 2 fen left, to the largest remainders .919 and .676.
    parts = allocate_recovery(D("10000.00"), borne)
    assert parts == {
        "mutual_guarantee": D("0.00"),
        "government": D("3000.00"),
        "bank": D("2000.00"),
        "insurer": D("5000.00"),
    }
    # What they still bear, 703.70 / 469.13 / 1,172.84 (234,567 fen), weights the next one:
    # 1,000.00 = 100,000 fen -> exact 100,000 x 70,370 / 234,567 = 29,999.957,
    # x 46,913 / 234,567 = 19,999.829, x 117,284 / 234,567 = 50,000.213; floors 29,999 +
    # 19,999 + 50,000 = 99,998, 2 fen left to .957 (government) and .829 (bank).
    still = {party: borne[party] - parts[party] for party in PARTIES}
    assert allocate_recovery(D("1000.00"), still) == {
        "mutual_guarantee": D("0.00"),
        "government": D("300.00"),
        "bank": D("200.00"),
        "insurer": D("500.00"),
    }


def test_a_business_loss_with_its_mutual_guarantee_recovered_10000_by_hand() -> None:
    # A business's loss of 20,123.45 met first by 2,000.00 of its mutual guarantee
    # contributions; the other 18,123.45 (1,812,345 fen) split 30/20/50: exact 543,703.5 /
    # 362,469 / 906,172.5 fen, floors sum to 1,812,344, 1 fen left; government and insurer tie
    # at .5, the larger share (insurer) takes it -> 5,437.03 / 3,624.69 / 9,061.73.
    borne = {"mutual_guarantee": D("2000.00"), **split_loss(D("18123.45"))}
    assert [borne[p] for p in PARTIES] == [D("2000.00"), D("5437.03"), D("3624.69"), D("9061.73")]
    # 10,000.00 = 1,000,000 fen over the whole loss of 2,012,345 fen:
    #   mutual guarantee 1,000,000 x 200,000 / 2,012,345 =  99,386.537 -> floor  99,386
    #   government       1,000,000 x 543,703 / 2,012,345 = 270,183.791 -> floor 270,183
    #   bank             1,000,000 x 362,469 / 2,012,345 = 180,122.693 -> floor 180,122
    #   insurer          1,000,000 x 906,173 / 2,012,345 = 450,306.980 -> floor 450,306
    # Floors sum to 999,997: 3 fen left, to .980 (insurer), .791 (government), .693 (bank);
    # the mutual guarantee's .537 is the smallest and gets none.
    assert allocate_recovery(D("10000.00"), borne) == {
        "mutual_guarantee": D("993.86"),
        "government": D("2701.84"),
        "bank": D("1801.23"),
        "insurer": D("4503.07"),
    }


def test_a_tie_goes_to_the_larger_weight_then_to_the_party_listed_first() -> None:
    # 2 fen over 1 / 3 fen: exact .5 / 1.5, floors 0 / 1, 1 fen left; the remainders tie at
    # .5, so the larger weight (the insurer's 3) takes it: 0 / 2, not 1 / 1.
    still = {"mutual_guarantee": D("0.00"), "government": D("0.01"), "bank": D("0.00"), "insurer": D("0.03")}
    assert allocate_recovery(D("0.02"), still) == {
        "mutual_guarantee": D("0.00"),
        "government": D("0.00"),
        "bank": D("0.00"),
        "insurer": D("0.02"),
    }
    # 1 fen over 1 / 1: a tie of remainders and of weights -> the party listed first.
    still = {"mutual_guarantee": D("0.00"), "government": D("0.01"), "bank": D("0.01"), "insurer": D("0.00")}
    assert allocate_recovery(D("0.01"), still)["government"] == D("0.01")


def test_what_is_still_borne_keeps_a_party_from_getting_the_same_odd_fen_twice() -> None:
    # The loss 0.03 split 30/20/50 is 1 / 1 / 1 fen. Two recoveries of 1 fen: split by the
    # original parts both would go to the government (tie -> listed first), 2 fen to a party
    # that bore 1; weighted by what is still borne, the second goes to the bank.
    borne = {"mutual_guarantee": D("0.00"), **split_loss(D("0.03"))}
    first = allocate_recovery(D("0.01"), borne)
    assert first["government"] == D("0.01")
    second = allocate_recovery(D("0.01"), {p: borne[p] - first[p] for p in PARTIES})
    assert (second["government"], second["bank"]) == (D("0.00"), D("0.01"))


@pytest.mark.parametrize(
    ("amount", "message"),
    [(D("0.00"), "positive"), (D("-1.00"), "negative"), (D("1.001"), "fen"), (D("12345.68"), "exceeds")],
)
def test_refused_recoveries(amount: Decimal, message: str) -> None:
    borne = {"mutual_guarantee": D("0.00"), **split_loss(D("12345.67"))}
    with pytest.raises(ValueError, match=message):
        allocate_recovery(amount, borne)


@st.composite
def _losses_and_recoveries(draw: st.DrawFn) -> tuple[int, int, dict[str, int], list[int]]:
    """A loss (fen), the mutual guarantee left to draw on (fen), the weights and the recoveries
    (fen, positive, together at most the loss; the last may take all that is left)."""
    loss = draw(st.integers(min_value=1, max_value=10**10))
    mutual_guarantee = draw(st.one_of(st.just(0), st.integers(min_value=0, max_value=loss * 2)))
    weights = draw(
        st.one_of(
            st.just(dict(DEFAULT_WEIGHTS)),
            st.fixed_dictionaries({p: st.integers(min_value=1, max_value=100) for p in DEFAULT_WEIGHTS}),
        )
    )
    recoveries: list[int] = []
    left = loss
    for _ in range(draw(st.integers(min_value=1, max_value=6))):
        if left == 0:
            break
        amount = draw(st.one_of(st.integers(min_value=1, max_value=left), st.just(left), st.just(1)))
        recoveries.append(amount)
        left -= amount
    return loss, mutual_guarantee, weights, recoveries


@settings(max_examples=400, deadline=None)
@given(_losses_and_recoveries())
def test_allocations_sum_to_the_recovery_stay_within_each_share_and_match_the_reference(
    case: tuple[int, int, dict[str, int], list[int]],
) -> None:
    loss_fen, mutual_guarantee_fen, weights, recoveries = case
    reference = ReferenceLoss.split(Fraction(loss_fen, 100), Fraction(mutual_guarantee_fen, 100), weights)
    # The service's loss split is the reference's (the mutual guarantee first, then the rest).
    drawn = min(_yuan(loss_fen), _yuan(mutual_guarantee_fen))
    parts_of_loss = {"mutual_guarantee": drawn, **split_loss(_yuan(loss_fen) - drawn, weights)}
    # In the parties' order, as risk reads them off the loss row (services/risk/recoveries.py).
    borne = {p: parts_of_loss[p] for p in PARTIES}
    assert {p: _fraction(borne[p]) for p in PARTIES} == reference.borne
    still = dict(borne)
    returned = dict.fromkeys(PARTIES, D("0.00"))
    for number, fen in enumerate(recoveries):
        amount = _yuan(fen)
        parts = allocate_recovery(amount, still)
        assert sum(parts.values(), D("0.00")) == amount, "the parts sum to the recovery"
        assert all(D("0.00") <= parts[p] <= still[p] for p in PARTIES), "no party beyond what it still bears"
        assert {p: _fraction(parts[p]) for p in PARTIES} == reference.recover(Fraction(fen, 100))
        if number == 0:
            # The first recovery is the largest-remainder split of it by the parts of the loss.
            by_borne = largest_remainder(Fraction(fen, 100), {p: _fraction(borne[p]) for p in PARTIES})
            assert {p: _fraction(parts[p]) for p in PARTIES} == by_borne
        for p in PARTIES:
            still[p] -= parts[p]
            returned[p] += parts[p]
            assert returned[p] <= borne[p], "never more back than a party bore"
    if sum(recoveries) == loss_fen:
        assert returned == borne, "the whole loss recovered: each has back exactly its part"
    else:
        with pytest.raises(ValueError, match="exceeds"):
            allocate_recovery(_yuan(loss_fen - sum(recoveries) + 1), still)
