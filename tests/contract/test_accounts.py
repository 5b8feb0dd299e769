import pytest

from contract import account_name_problem


@pytest.mark.parametrize("name", ["main", "ops_2", "a-b", "x" * 32])
def test_account_name_problem_letters_digits_dash_underscore_is_none(name: str) -> None:
    assert account_name_problem(name) is None


@pytest.mark.parametrize("name", ["", "x" * 33, "has space", "点", "a/b", "a.b"])
def test_account_name_problem_other_names_say_why(name: str) -> None:
    assert account_name_problem(name) == "must be 1-32 characters of letters, digits, _ or -"
