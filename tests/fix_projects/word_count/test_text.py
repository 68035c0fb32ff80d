from text import count_words


def test_simple():
    assert count_words("one two three") == 3


def test_extra_spaces():
    assert count_words("  one   two ") == 2


def test_empty():
    assert count_words("") == 0
