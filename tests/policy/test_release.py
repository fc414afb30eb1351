"""The pure rules of exact releases: periods, settling, retention edges, window bits and
complementary suppression."""

import datetime as dt

import h3.api.basic_int as h3

from govern.policy import release as rules

UTC = dt.UTC


def at(*args) -> dt.datetime:
    return dt.datetime(*args, tzinfo=UTC)


def test_aligned_periods():
    assert rules.aligned_period(at(2026, 3, 9), at(2026, 3, 10)) == "day"
    assert rules.aligned_period(at(2026, 3, 9), at(2026, 3, 16)) == "week"  # a Monday
    assert rules.aligned_period(at(2026, 3, 10), at(2026, 3, 17)) is None
    assert rules.aligned_period(at(2026, 2, 1), at(2026, 3, 1)) == "month"
    assert rules.aligned_period(at(2026, 3, 9), at(2026, 3, 9, 1)) is None


def test_a_period_settles_after_its_end_plus_the_delay():
    assert rules.settled_at(at(2026, 3, 10), 24) == at(2026, 3, 11)
    assert rules.settled_at(at(2026, 3, 10), 0) == at(2026, 3, 10)


def test_retention_is_cut_at_whole_days():
    assert rules.retention_cutoff(at(2026, 5, 9, 10), 60) == at(2026, 3, 11)
    assert rules.retention_cutoff(at(2026, 5, 9), 60) == at(2026, 3, 10)
    now = at(2026, 5, 9, 10)  # 60 days back is 10:00 on 10 March: that day is gone whole
    assert rules.retention_state(at(2026, 3, 10), now, 60, True) == "past_retention"
    assert rules.retention_state(at(2026, 3, 11), now, 60, True) is None
    assert rules.retention_state(at(2026, 3, 11), now, 60, False) == "near_retention_edge"
    assert rules.retention_state(at(2026, 4, 18), now, 60, False) is None


def test_a_purpose_counts_for_a_whole_day_or_not_at_all():
    def starts(now):  # bit 0 keeps 30 days, bit 1 a year
        return [(0, now - dt.timedelta(days=30)), (1, now - dt.timedelta(days=365))]

    day = at(2026, 3, 9)
    assert rules.window_bits(starts(day + dt.timedelta(days=30)), day) == 0b11
    assert rules.window_bits(starts(day + dt.timedelta(days=30, hours=1)), day) == 0b10


def region(groups, subjects):
    return rules.Region(frozenset(groups), subjects)


def test_complementary_withholds_the_candidate_that_holds_a_small_region():
    # 1 released (parent, 12), 2 candidate (child, 11): the parent's remainder has 1 person
    regions = [region({1, 2}, 11), region({1}, 1)]
    assert rules.complementary(regions, {2}, 5) == {2}
    # candidate parent 2 over released child 1: the small region lies in the candidate
    assert rules.complementary([region({1, 2}, 11), region({2}, 1)], {2}, 5) == {2}
    # nothing small, or nothing at all left over: nothing to withhold
    assert rules.complementary([region({1, 2}, 11), region({1}, 5)], {2}, 5) == set()
    assert rules.complementary([region({1, 2}, 11)], {2}, 5) == set()


def test_floor_and_sticky():
    assert rules.passes_floor(5, 5, 5) is None
    assert rules.passes_floor(4, 4, 5) == "below_k"
    assert rules.passes_floor(9, 1, 5) == "sticky"


def test_a_nested_difference_under_k_withholds_the_pending_side_only():
    nest = rules.Nesting(inner=1, outer=2, inner_subjects=11, outer_subjects=12)
    assert rules.exact_differences([nest], pending={1}, k=5) == {1}
    assert rules.exact_differences([nest], pending={2}, k=5) == {2}
    assert len(rules.exact_differences([nest], pending={1, 2}, k=5)) == 1  # one is enough
    wide = rules.Nesting(inner=1, outer=2, inner_subjects=7, outer_subjects=12)
    same = rules.Nesting(inner=1, outer=2, inner_subjects=12, outer_subjects=12)
    assert rules.exact_differences([wide, same], pending={1, 2}, k=5) == set()


def test_an_overlap_under_k_through_the_rest_withholds_one_pending_group_of_it():
    # 12 + 12 - 22: two people in both halves of the outer group
    nest = rules.Nesting(inner=1, outer=3, inner_subjects=12, outer_subjects=22, rest=2,
                         rest_subjects=12)
    assert rules.exact_differences([nest], pending={2}, k=5) == {2}
    assert len(rules.exact_differences([nest], pending={1, 3}, k=5) & {1, 3}) == 1
    apart = rules.Nesting(inner=1, outer=3, inner_subjects=12, outer_subjects=24, rest=2,
                          rest_subjects=12)
    assert rules.exact_differences([apart], pending={1, 2, 3}, k=5) == set()
    assert rules.exact_differences([rules.Nesting(1, 3, 12, 22)], pending={1}, k=5) == set()


def test_the_difference_check_withholds_the_group_in_most_unsafe_pairs_first():
    # group 1 is in two unsafe pairs (with 2 and with 3): withholding it alone repairs both
    pairs = [rules.Nesting(1, 2, 11, 12), rules.Nesting(1, 3, 11, 13),
             rules.Nesting(4, 5, 20, 21)]
    got = rules.exact_differences(pairs, pending={1, 2, 3, 4, 5}, k=5)
    assert 1 in got and not got & {2, 3} and len(got & {4, 5}) == 1
    assert rules.exact_differences(pairs, pending={2}, k=5) == {2}


def test_a_cover_whose_parts_cross_under_k_times_withholds_one_pending_group_of_it():
    # 6 + 6 + 5 - 16: one person in two of the three parts
    cover = rules.Cover(whole=4, whole_subjects=16, parts=frozenset({1, 2, 3}),
                        parts_subjects=17)
    assert rules.exact_differences([], pending={4}, k=5, covers=[cover]) == {4}
    assert rules.exact_differences([], pending={2}, k=5, covers=[cover]) == {2}
    assert len(rules.exact_differences([], pending={1, 2, 3, 4}, k=5, covers=[cover])) == 1
    assert rules.exact_differences([], pending={5}, k=5, covers=[cover]) == set()  # released
    apart = rules.Cover(4, 15, frozenset({1, 2, 3}), 15)  # nobody crossed
    many = rules.Cover(4, 16, frozenset({1, 2, 3}), 21)  # five crossings
    assert rules.exact_differences([], pending={1, 2, 3, 4}, k=5, covers=[apart, many]) == set()


def _placed(gid, t_from, days, res, cell, atoms, subjects):
    return rules.Placed(gid, t_from, t_from + dt.timedelta(days=days), res, cell, atoms,
                        subjects)


def test_chain_covers_find_a_cell_made_of_a_child_and_the_grandchildren_of_the_others():
    """Resolution 7 holds the first child only; the other children are there as their
    resolution-8 cells: a cover across two resolutions, of one chain."""
    parent = h3.latlng_to_cell(52.52, 13.405, 6)
    first, *others = sorted(h3.cell_to_children(parent, 7))[:3]
    day = dt.datetime(2026, 3, 10, tzinfo=dt.UTC)
    groups = [_placed(1, day, 1, 6, parent, 12, 16), _placed(2, day, 1, 7, first, 4, 6)]
    for i, child in enumerate(others):
        for j, cell in enumerate(sorted(h3.cell_to_children(child, 8))[:2]):
            groups.append(_placed(10 + 2 * i + j, day, 1, 8, cell, 2, 3))
    inner = [_placed(20, day, 1, 8, sorted(h3.cell_to_children(first, 8))[0], 4, 6)]
    # the child and one grandchild pending: the cover names those (what can be withheld)
    covers = rules.chain_covers(groups + inner, pending={2, 10})
    assert [(c.whole, c.whole_subjects, c.parts, c.parts_subjects) for c in covers] == [
        (1, 16, {2, 10}, 18)]
    assert len(rules.exact_differences([], {2, 10}, 5, covers)) == 1  # 18 - 16: two crossings
    # the parent pending alone: one cover (every chain finds the same), withheld
    covers = rules.chain_covers(groups + inner, pending={1})
    assert [(c.parts, c.parts_subjects) for c in covers] == [(frozenset(), 18)]
    assert rules.exact_differences([], {1}, 5, covers) == {1}
    assert rules.chain_covers(groups + inner, pending={99}) == []  # nothing pending in it
    assert rules.chain_covers(groups[:-1], pending={1}) == []  # a part missing: no cover


def test_chain_covers_find_a_month_made_of_its_weeks_and_the_days_no_week_holds():
    cell = h3.latlng_to_cell(52.52, 13.405, 9)
    march = dt.datetime(2026, 3, 1, tzinfo=dt.UTC)  # a Sunday
    groups = [_placed(1, march, 31, 9, cell, 3, 15),
              _placed(2, march + dt.timedelta(days=1), 7, 9, cell, 1, 5),
              _placed(3, march + dt.timedelta(days=8), 7, 9, cell, 1, 6),
              _placed(4, march + dt.timedelta(days=29), 1, 9, cell, 1, 5),
              _placed(5, march + dt.timedelta(days=9), 1, 9, cell, 1, 6)]  # inside week 3
    covers = rules.chain_covers(groups, pending={4})
    assert [(c.whole, c.parts, c.parts_subjects) for c in covers] == [(1, {4}, 16)]
    assert rules.exact_differences([], {4}, 5, covers) == {4}
