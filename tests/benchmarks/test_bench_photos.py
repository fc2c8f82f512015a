"""The photo benchmark's statistics: how far a count on a few hundred photos can be trusted."""

import pytest

from benchmarks.bench_photos import paired_comparison, wilson_interval


def test_the_wilson_interval_matches_the_published_tables():
    assert wilson_interval(5, 10) == pytest.approx((0.2366, 0.7634), abs=1e-4)
    assert wilson_interval(0, 10) == pytest.approx((0.0, 0.2775), abs=1e-4)


def test_a_count_near_70_percent_of_200_photos_is_good_to_about_six_points():
    low, high = wilson_interval(138, 200)
    assert low == pytest.approx(0.69 - 0.067, abs=1e-3) and high == pytest.approx(0.69 + 0.06, abs=1e-3)


def report(*right: str) -> dict:
    return {"right": list(right)}


def test_photos_both_models_get_right_say_nothing_about_which_is_better():
    shared = [f"p{i}.jpg" for i in range(100)]
    assert paired_comparison(report(*shared, "a.jpg"), report(*shared)) == {
        "only_first": 1, "only_second": 0, "p_value": 1.0}


def test_six_photos_one_way_and_none_the_other_is_a_real_difference():
    first = report("a.jpg", "b.jpg", "c.jpg", "d.jpg", "e.jpg", "f.jpg")
    assert paired_comparison(first, report())["p_value"] == pytest.approx(2 / 2 ** 6)
    assert paired_comparison(report(), first)["only_second"] == 6


def test_an_even_split_of_the_disagreements_is_no_difference():
    assert paired_comparison(report("a.jpg", "b.jpg"), report("c.jpg", "d.jpg"))["p_value"] == 1.0
