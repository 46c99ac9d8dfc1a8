using System.Globalization;

namespace TinyTrain.Emulator.Streams;

/// <summary>
/// The text form: <c>&lt;source&gt;[&lt;classes&gt;]:&lt;transform&gt;[@&lt;severity&gt;][*&lt;count&gt;][/&lt;labels&gt;]</c>,
/// segments separated by commas. Columns in messages are 1-based over the whole spec, as the user typed it.
/// </summary>
internal sealed class StreamSpecParser
{
    private const string Example = "mnist:clean*2000, mnist-c:fog*2000";

    private readonly string _spec;
    private readonly int _start;
    private readonly int _end;
    private readonly int _number;
    private int _pos;

    private StreamSpecParser(string spec, int start, int end, int number)
    {
        _spec = spec;
        _start = start;
        _end = end;
        _number = number;
        _pos = start;
    }

    public static StreamSegment[] Parse(string spec)
    {
        if (string.IsNullOrWhiteSpace(spec))
            throw new TinyTrainException($"stream spec is empty: expected segments such as '{Example}'.");
        var segments = new List<StreamSegment>();
        int from = 0, depth = 0;
        for (int i = 0; i <= spec.Length; i++)
        {
            char c = i < spec.Length ? spec[i] : ',';
            if (c == '[') depth++;
            else if (c == ']') depth = Math.Max(0, depth - 1);
            // A comma inside [..] separates classes; at the end of the text an open bracket is reported by the parser.
            if (c != ',' || (depth > 0 && i < spec.Length)) continue;
            int start = from, end = i;
            while (start < end && char.IsWhiteSpace(spec[start])) start++;
            while (end > start && char.IsWhiteSpace(spec[end - 1])) end--;
            var parser = new StreamSpecParser(spec, start, end, segments.Count + 1);
            if (start == end)
                throw parser.Fail($"expected a segment such as 'mnist:clean*2000' (an empty segment: two commas, or one at the end?)");
            segments.Add(parser.ParseSegment());
            from = i + 1;
            depth = 0;
        }
        return [.. segments];
    }

    private StreamSegment ParseSegment()
    {
        string source = ReadName();
        if (source.Length == 0)
            throw Fail($"expected a data source such as 'mnist', found {Found()}");
        string baseSet = StreamSources.Resolve(source, out bool corrupted) ?? throw FailName(StreamSources.UnknownSource(source));

        int[]? classes = null;
        if (At('['))
            classes = ReadClasses();

        if (!At(':'))
            throw Fail($"expected ':<transform>' after '{_spec[_start.._pos]}', found {Found()}");
        _pos++;
        string transform = ReadName();
        if (transform.Length == 0)
            throw Fail($"expected a transform after ':' (clean, or a corruption such as fog), found {Found()}");
        if (StreamSources.CheckTransform(source, corrupted, transform) is string badTransform)
            throw FailName(badTransform);

        double severity = 1.0;
        bool hasSeverity = false;
        if (At('@'))
        {
            int at = _pos++;
            int numberStart = _pos;
            while (_pos < _end && (char.IsAsciiDigit(_spec[_pos]) || _spec[_pos] is '.' or 'e' or 'E' or '+' or '-')) _pos++;
            string number = _spec[numberStart.._pos];
            if (number.Length == 0 || !double.TryParse(number, NumberStyles.Float, CultureInfo.InvariantCulture, out severity))
            {
                _pos = numberStart;
                throw Fail($"expected a severity after '@', as in @2 or @0.5, found {Found()}");
            }
            if (StreamSources.CheckSeverity(transform, severity) is string badSeverity)
            {
                _pos = at;
                throw Fail(badSeverity);
            }
            hasSeverity = true;
        }

        int? count = null;
        if (At('*'))
        {
            _pos++;
            int digitsStart = _pos;
            while (_pos < _end && char.IsAsciiDigit(_spec[_pos])) _pos++;
            string digits = _spec[digitsStart.._pos];
            _pos = digitsStart;
            if (digits.Length == 0)
                throw Fail($"expected a sample count after '*', as in *2000, found {Found()}");
            if (!int.TryParse(digits, NumberStyles.None, CultureInfo.InvariantCulture, out int n))
                throw Fail($"count {digits} is too large (at most {int.MaxValue})");
            if (n < 1)
                throw Fail("count must be at least 1");
            _pos += digits.Length;
            count = n;
        }

        LabelRule labels = LabelRule.All;
        bool hasLabels = false;
        if (At('/'))
        {
            _pos++;
            int labelsStart = _pos;
            while (_pos < _end && (char.IsAsciiLetterOrDigit(_spec[_pos]) || _spec[_pos] == ':')) _pos++;
            string text = _spec[labelsStart.._pos];
            if (text.Length == 0)
            {
                throw Fail($"expected labels after '/' (all, none, every:N or first:N), found {Found()}");
            }
            if (!LabelRule.TryParse(text, out labels, out string error, out int offset))
            {
                _pos = labelsStart + offset;
                throw Fail(error);
            }
            hasLabels = true;
        }

        if (_pos < _end)
        {
            var next = new List<string>();
            if (!hasSeverity && count is null && !hasLabels && transform != StreamSegment.Clean) next.Add("'@<severity>'");
            if (count is null && !hasLabels) next.Add("'*<count>'");
            if (!hasLabels) next.Add("'/<labels>'");
            string expected = next.Count == 0 ? "',' or the end" : string.Join(", ", next) + " or ','";
            throw Fail($"expected {expected}, found {Found()}");
        }
        return new StreamSegment(source, baseSet, classes, transform, severity, count, labels);
    }

    private int[] ReadClasses()
    {
        _pos++;
        var classes = new SortedSet<int>();
        while (true)
        {
            SkipSpaces();
            int itemStart = _pos;
            int low = ReadClass();
            int high = low;
            if (At('-'))
            {
                _pos++;
                high = ReadClass();
                if (high < low)
                {
                    _pos = itemStart;
                    throw Fail($"class range {low}-{high} runs backwards; write {high}-{low}");
                }
            }
            for (int c = low; c <= high; c++) classes.Add(c);
            SkipSpaces();
            if (At(','))
            {
                _pos++;
                continue;
            }
            if (At(']'))
            {
                _pos++;
                return [.. classes];
            }
            throw Fail($"expected ',' or ']' in the class list, found {Found()}");
        }
    }

    private int ReadClass()
    {
        int start = _pos;
        while (_pos < _end && char.IsAsciiDigit(_spec[_pos])) _pos++;
        string digits = _spec[start.._pos];
        _pos = start;
        if (digits.Length == 0)
            throw Fail($"expected a class number, as in [0-4] or [1,3,5], found {Found()}");
        if (!int.TryParse(digits, NumberStyles.None, CultureInfo.InvariantCulture, out int c) || c > StreamSources.MaxClass)
            throw Fail($"class {digits} is out of range 0..{StreamSources.MaxClass}");
        _pos += digits.Length;
        return c;
    }

    private string ReadName()
    {
        int start = _pos;
        while (_pos < _end && (char.IsAsciiLetterOrDigit(_spec[_pos]) || _spec[_pos] is '-' or '_')) _pos++;
        return _spec[start.._pos].ToLowerInvariant();
    }

    private void SkipSpaces()
    {
        while (_pos < _end && _spec[_pos] == ' ') _pos++;
    }

    private bool At(char c) => _pos < _end && _spec[_pos] == c;

    private string Found()
    {
        if (_pos >= _end) return "the end of the segment";
        string rest = _spec[_pos.._end];
        return rest.Length <= 12 ? $"'{rest}'" : $"'{rest[..12]}...'";
    }

    private string Where => $"stream spec, segment {_number} ('{_spec[_start.._end]}')";

    private TinyTrainException Fail(string message) =>
        new($"{Where}, column {_pos + 1}: {message}.");

    private TinyTrainException FailName(string message) => new($"{Where}: {message}.");
}
