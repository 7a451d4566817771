"""Pure weight converters: source file/arrays -> (state_dict, key_map)."""
