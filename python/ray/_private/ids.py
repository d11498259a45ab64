"""Ray's ID types as the API hands them out: binary(), hex(), equality and hashing."""


class BaseID:
    def __init__(self, binary):
        self._binary = bytes(binary)

    def binary(self):
        return self._binary

    def hex(self):
        return self._binary.hex()

    def is_nil(self):
        return self._binary == bytes(len(self._binary))

    def __eq__(self, other):
        return type(other) is type(self) and other._binary == self._binary

    def __hash__(self):
        return hash(self._binary)

    def __repr__(self):
        return f"{type(self).__name__}({self.hex()})"


class JobID(BaseID):
    def int(self):
        return int.from_bytes(self._binary, "little")


class NodeID(BaseID):
    pass


class TaskID(BaseID):
    pass


class WorkerID(BaseID):
    pass


class ActorID(BaseID):
    pass


class PlacementGroupID(BaseID):
    pass
