"""The read side: views, board papers' contexts and exports. Queries only; never imports
engine.commands."""
