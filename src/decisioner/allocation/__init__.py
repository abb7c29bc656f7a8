"""Allocation: bandit policies over arms and slate exploration over ranked candidates."""

from .slate import SlatePolicy
from .thompson import BernoulliThompson

__all__ = ["BernoulliThompson", "SlatePolicy"]
