"""`bench/test_suite_bench.py --same-tests`: which tests count as the same in two trees, and
which of a tree's test commands run them."""

from __future__ import annotations

from bench.test_suite_bench import _restricted, matched_tests


def test_it_matches_by_node_id_then_by_file_in_another_folder_then_by_a_name_found_once() -> None:
    before = [
        "tests/test_a.py::test_kept",
        "tests/annotation/test_import_parsers.py::test_moved[pandalm]",
        "tests/test_old_name.py::test_renamed_file",
        "tests/test_b.py::test_twice",
        "tests/test_c.py::test_twice",
        "tests/test_gone.py::test_removed",
    ]
    after = [
        "tests/test_a.py::test_kept",
        "tests/corpus/test_import_parsers.py::test_moved[pandalm]",
        "tests/corpus/test_new_name.py::test_renamed_file",
        "tests/test_d.py::test_twice",
        "tests/test_new.py::test_added",
    ]

    assert matched_tests(before, after) == [
        ("tests/test_a.py::test_kept", "tests/test_a.py::test_kept"),
        (
            "tests/annotation/test_import_parsers.py::test_moved[pandalm]",
            "tests/corpus/test_import_parsers.py::test_moved[pandalm]",
        ),
        (
            "tests/test_old_name.py::test_renamed_file",
            "tests/corpus/test_new_name.py::test_renamed_file",
        ),
    ]


def test_a_test_is_matched_once_even_when_its_name_is_found_in_several_ways() -> None:
    before = ["tests/x/test_m.py::test_t", "tests/test_m.py::test_t"]
    after = ["tests/test_m.py::test_t", "tests/y/test_m.py::test_t"]

    pairs = matched_tests(before, after)

    assert pairs == [
        ("tests/test_m.py::test_t", "tests/test_m.py::test_t"),
        ("tests/x/test_m.py::test_t", "tests/y/test_m.py::test_t"),
    ]
    assert len({new for _, new in pairs}) == len(pairs)


def test_a_command_naming_files_gets_only_their_tests_and_one_naming_none_gets_all() -> None:
    commands = [
        'pytest -n auto -m "not slow and not serial"',
        'pytest -m "serial and not slow" tests/test_task_path.py tests/test_celery_redis.py',
        "pytest -m serial tests/test_worker_crash.py",
    ]
    nodes = ["tests/test_a.py::test_one", "tests/test_task_path.py::test_two[a b]"]

    assert _restricted(commands, nodes) == [
        'pytest -n auto -m "not slow and not serial" tests/test_a.py::test_one '
        "'tests/test_task_path.py::test_two[a b]'",
        'pytest -m "serial and not slow" tests/test_task_path.py tests/test_celery_redis.py '
        "'tests/test_task_path.py::test_two[a b]'",
    ]  # the worker-crash command has none of the tests, so it is left out
