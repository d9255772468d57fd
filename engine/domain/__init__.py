"""The domain: money, savings, dates and the rules of arithmetic every layer shares. Imports
nothing from the other layers."""
