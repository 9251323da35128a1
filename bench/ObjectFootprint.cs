using System.Reflection;
using System.Runtime.CompilerServices;

namespace Transport.Bench;

/// <summary>
/// Where the managed bytes of one object graph go (the <c>scale</c> bench's <c>--breakdown</c>): walks the graph from
/// a root by reflection over instance fields, breadth first, and charges every object (its size from the runtime's
/// type data: base size plus elements) to the field path by which it was first reached, cut at
/// <see cref="PathDepth"/> fields. Objects also reachable from <c>others</c> (another connection of the same server)
/// are shared and not charged, nor walked into; objects of the <c>boundary</c> types (the driver, the bench's own
/// state) are not walked. An estimate of live bytes, not an allocation profile.
/// </summary>
internal static class ObjectFootprint
{
    public const int PathDepth = 3;
    private const int MaxObjects = 200_000;

    public sealed record Result(long Bytes, int Objects, List<(string Path, long Bytes, int Objects)> ByPath,
        List<(string Type, long Bytes, int Objects)> ByType, bool Truncated);

    public static Result Measure(object root, IEnumerable<object> others, Func<Type, bool> boundary)
    {
        var shared = new HashSet<object>(ReferenceEqualityComparer.Instance);
        foreach (var other in others) Walk(other, boundary, shared, null, (_, _, _) => { });
        var seen = new HashSet<object>(ReferenceEqualityComparer.Instance);
        var byPath = new Dictionary<string, (long Bytes, int Objects)>(StringComparer.Ordinal);
        var byType = new Dictionary<string, (long Bytes, int Objects)>(StringComparer.Ordinal);
        long total = 0;
        var count = 0;
        var truncated = Walk(root, boundary, seen, shared, (o, path, size) =>
        {
            total += size;
            count++;
            var p = byPath.GetValueOrDefault(path);
            byPath[path] = (p.Bytes + size, p.Objects + 1);
            var name = TypeName(o.GetType());
            var t = byType.GetValueOrDefault(name);
            byType[name] = (t.Bytes + size, t.Objects + 1);
        });
        return new Result(total, count,
            byPath.Select(kv => (kv.Key, kv.Value.Bytes, kv.Value.Objects)).OrderByDescending(x => x.Bytes).ToList(),
            byType.Select(kv => (kv.Key, kv.Value.Bytes, kv.Value.Objects)).OrderByDescending(x => x.Bytes).ToList(),
            truncated);
    }

    // Breadth first from root; each object reached the first time is reported with its path (cut at PathDepth fields).
    private static bool Walk(object root, Func<Type, bool> boundary, HashSet<object> seen, HashSet<object>? skip, Action<object, string, long> visit)
    {
        var queue = new Queue<(object Object, string Path, int Depth)>();
        if (!seen.Add(root)) return false;
        queue.Enqueue((root, TypeName(root.GetType()), 0));
        while (queue.Count > 0)
        {
            if (seen.Count > MaxObjects) return true;
            var (o, path, depth) = queue.Dequeue();
            visit(o, path, SizeOf(o));
            foreach (var (child, name) in Children(o))
            {
                if (child is null || skip?.Contains(child) == true || boundary(child.GetType()) || child is Type or MemberInfo or Assembly or Module) continue;
                if (!seen.Add(child)) continue;
                var childPath = depth < PathDepth ? $"{path}.{name}" : path;
                queue.Enqueue((child, childPath, depth + 1));
            }
        }
        return false;
    }

    private static IEnumerable<(object? Child, string Name)> Children(object o)
    {
        var type = o.GetType();
        if (type.IsArray)
        {
            var element = type.GetElementType()!;
            if (element.IsPrimitive || element.IsPointer || element.IsEnum) yield break;
            if (element.IsValueType)
            {
                var fields = InstanceFields(element).Where(f => !f.FieldType.IsPrimitive && !f.FieldType.IsPointer && !f.FieldType.IsEnum).ToArray();
                if (fields.Length == 0) yield break;
                foreach (var item in (Array)o)
                    if (item is not null)
                        foreach (var f in fields)
                            foreach (var c in Flatten(f.GetValue(item), f)) yield return (c, "[]");
            }
            else
                foreach (var item in (Array)o) yield return (item, "[]");
            yield break;
        }
        foreach (var f in InstanceFields(type))
        {
            if (f.FieldType.IsPrimitive || f.FieldType.IsPointer || f.FieldType.IsEnum || f.FieldType == typeof(string) && false) continue;
            object? value;
            try { value = f.GetValue(o); }
            catch (Exception e) when (e is NotSupportedException or FieldAccessException or ArgumentException) { continue; }
            foreach (var c in Flatten(value, f)) yield return (c, Clean(f.Name));
        }
    }

    // A struct field's references (one level of nesting is enough for the tuples and entries met here; deeper ones recurse).
    private static IEnumerable<object?> Flatten(object? value, FieldInfo field, int depth = 0)
    {
        if (value is null) yield break;
        if (!field.FieldType.IsValueType || field.FieldType.IsPrimitive) { if (!field.FieldType.IsPrimitive) yield return value; yield break; }
        if (depth > 4) yield break;
        foreach (var f in InstanceFields(field.FieldType))
        {
            if (f.FieldType.IsPrimitive || f.FieldType.IsPointer || f.FieldType.IsEnum) continue;
            object? inner;
            try { inner = f.GetValue(value); }
            catch (Exception e) when (e is NotSupportedException or FieldAccessException or ArgumentException) { continue; }
            foreach (var c in Flatten(inner, f, depth + 1)) yield return c;
        }
    }

    private static readonly Dictionary<Type, FieldInfo[]> FieldCache = new();

    private static FieldInfo[] InstanceFields(Type type)
    {
        lock (FieldCache)
        {
            if (FieldCache.TryGetValue(type, out var cached)) return cached;
            var list = new List<FieldInfo>();
            for (var t = type; t is not null; t = t.BaseType)
                list.AddRange(t.GetFields(BindingFlags.Instance | BindingFlags.Public | BindingFlags.NonPublic | BindingFlags.DeclaredOnly)
                    .Where(f => !f.FieldType.IsByRefLike && !f.FieldType.IsPointer && f.FieldType != typeof(IntPtr) && f.FieldType != typeof(UIntPtr)));
            return FieldCache[type] = list.ToArray();
        }
    }

    private static string Clean(string name) => name.StartsWith('<') && name.Contains(">k__BackingField", StringComparison.Ordinal)
        ? name[1..name.IndexOf('>')] : name;

    private static string TypeName(Type t)
    {
        if (t.IsArray) return TypeName(t.GetElementType()!) + "[]";
        if (!t.IsGenericType) return t.Name;
        var name = t.Name;
        var tick = name.IndexOf('`');
        return (tick > 0 ? name[..tick] : name) + "<" + string.Join(",", t.GetGenericArguments().Select(TypeName)) + ">";
    }

    // The runtime's MethodTable: flags (low 16 bits: component size for arrays and strings) then the base size.
    private static unsafe long SizeOf(object o)
    {
        var mt = (int*)o.GetType().TypeHandle.Value;
        long size = (uint)mt[1];
        if (o is Array array) size += (long)array.Length * (ushort)mt[0];
        else if (o is string s) size += (long)s.Length * 2;
        return Math.Max(24, (size + 7) & ~7L);
    }
}
